/**
 * What a tool's recorded arguments and a database statement say about their target. Pure and bounded: the
 * text is read only up to a limit, JSON only to a depth and a number of values, so a hostile or huge argument
 * costs at most a fixed amount of work per span.
 *
 * Reliability, as documented in schemas/conventions.md: a URL given as a whole argument value (`{"url":
 * "https://…"}`) names where the call goes, and is used; a URL inside free text (the body of a mail, a message)
 * is not where the call goes, and is ignored; arguments a framework truncated or did not record as JSON give
 * nothing. A table named after FROM/INTO/UPDATE/JOIN in the first statement is the collection; a statement that
 * builds its table name at run time, or reads several tables, gives the first one.
 */

/** Longest argument text parsed (frameworks record arguments whole; a megabyte of JSON is not worth parsing per span). */
export const MAX_ARGUMENTS_LENGTH = 16 * 1024;
/** How deep JSON arguments are read, and how many of their values at most (services/core/counterparties.ts too). */
export const MAX_DEPTH = 4;
export const MAX_VALUES = 256;

/** Keys whose value is where the call goes, preferred over any other URL-valued argument. */
const TARGET_KEY_RE =
  /^(url|uri|endpoint|webhook(_?url)?|callback(_?url)?|destination|target|host|hostname|server|address|link|href|remote|upload_?url)$/i;
const URL_RE = /^(https?|wss?|ftps?|sftp|s3|gs):\/\/[^\s/?#@]*@?[^\s/?#]+[^\s]*$/i;
/** A key that may hold a bare host name (the only target without `://`). */
const HOST_KEY_HINT = /"(host|hostname|server|address|destination|target|remote)"\s*:/i;
const HOSTNAME_RE = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;

/**
 * The URL (or host) a tool call goes to according to its arguments, or undefined. Prefers a value under a
 * target-like key (`url`, `endpoint`, `webhook_url`, `host`…), then the first argument that is a whole URL.
 */
export function targetFromArguments(text: string | undefined): string | undefined {
  if (text === undefined || text.length > MAX_ARGUMENTS_LENGTH) return undefined;
  // Most arguments name no destination: no parse for them (this runs for every tool span without a target).
  if (!text.includes('://') && !HOST_KEY_HINT.test(text)) return undefined;
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      return undefined;
    }
    const found: { keyed?: string; any?: string } = {};
    let budget = MAX_VALUES;
    const visit = (value: unknown, key: string | undefined, depth: number): void => {
      if (budget <= 0 || found.keyed !== undefined) return;
      budget -= 1;
      if (typeof value === 'string') {
        const candidate = value.trim();
        if (URL_RE.test(candidate)) {
          if (key !== undefined && TARGET_KEY_RE.test(key)) found.keyed = candidate;
          else found.any ??= candidate;
        } else if (key !== undefined && TARGET_KEY_RE.test(key) && HOSTNAME_RE.test(candidate)) {
          found.keyed = candidate.toLowerCase();
        }
        return;
      }
      if (depth >= MAX_DEPTH || value === null || typeof value !== 'object') return;
      if (Array.isArray(value)) {
        for (const item of value) visit(item, key, depth + 1);
      } else {
        for (const [childKey, child] of Object.entries(value)) visit(child, childKey, depth + 1);
      }
    };
    visit(parsed, undefined, 0);
    return found.keyed ?? found.any;
  }
  // A tool that takes one plain string (OpenInference records it as is): only a whole URL counts.
  return URL_RE.test(trimmed) ? trimmed : undefined;
}

/** Longest statement looked at for its table. */
const MAX_QUERY_LENGTH = 4096;
const TABLE_RE = /\b(?:from|into|update|join|table)\s+((?:[`"[]?[\w$]+[`"\]]?\.)?[`"[]?[\w$]+[`"\]]?)/i;

/** The first table a SQL statement names (`SELECT … FROM crm.customers` → `crm.customers`), or undefined. */
export function collectionFromQuery(query: string | undefined): string | undefined {
  if (query === undefined) return undefined;
  const match = TABLE_RE.exec(query.length > MAX_QUERY_LENGTH ? query.slice(0, MAX_QUERY_LENGTH) : query);
  const name = match?.[1]?.replace(/[`"[\]]/g, '');
  if (name === undefined || name === '' || /^(select|where|values|set)$/i.test(name)) return undefined;
  return name;
}
