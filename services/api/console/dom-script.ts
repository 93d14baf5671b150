/**
 * The helpers every console script shares (plain browser JavaScript, spliced into each script): the signed-in
 * token on requests (`TOKEN_KEY` in sessionStorage, which each script declares), elements built with their text
 * through textContent only, and a list's children replaced. No backticks or template placeholders inside.
 */
export const DOM_HELPERS = String.raw`  function authHeaders(headers) {
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.authorization = 'Bearer ' + token;
    return headers;
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === undefined || value === null || value === false) return;
        if (key === 'text') node.textContent = String(value);
        else if (key === 'className') node.className = value;
        else node.setAttribute(key, value === true ? '' : String(value));
      });
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    });
    return node;
  }

  function replaceChildren(parent, children) {
    while (parent.firstChild) parent.removeChild(parent.firstChild);
    children.forEach(function (child) { if (child) parent.appendChild(child); });
  }
`;
