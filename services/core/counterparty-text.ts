/**
 * Counterparties in free text (a tool's result, arguments that are not JSON, every string value of JSON
 * arguments): mail addresses, IBANs, URL hosts, `@name` and `#channel` tokens. Pure and linear in the text: mail
 * addresses and URLs are found by scanning from each `@` / `://` over a bounded run of allowed characters, the
 * other regexes have one bounded quantifier each, so 64 KiB of near-misses cost a few milliseconds at most
 * (test/unit/counterparties.test.ts times it).
 */
import type { CounterpartyKind } from '../../schemas/events.ts';

/** Where found values go (normalised); `full()` stops a scan early. */
export interface Sink {
  add(kind: CounterpartyKind, value: string): void;
  full(): boolean;
}

const MAX_LOCAL_PART = 64;
const MAX_DOMAIN = 253;
const MAX_AUTHORITY = 512;

/** Every kind the free text holds, in a fixed order (mail, URLs, IBANs, handles). */
export function scanText(text: string, sink: Sink): void {
  // Each scan runs only when its text has the character it starts from, and none once the sink is full.
  const at = text.indexOf('@');
  if (at !== -1) scanEmails(text, at, sink);
  const mark = text.indexOf('://');
  if (mark !== -1 && !sink.full()) scanUrlHosts(text, mark, sink);
  if (text.length >= MIN_IBAN_CANDIDATE && !sink.full()) scanIbans(text, sink);
  if ((at !== -1 || text.includes('#')) && !sink.full()) scanHandles(text, sink);
}

function isLocalChar(code: number): boolean {
  // A-Z a-z 0-9 . _ % + -
  return (
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2e ||
    code === 0x5f ||
    code === 0x25 ||
    code === 0x2b ||
    code === 0x2d
  );
}

function isDomainChar(code: number): boolean {
  return (
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2e ||
    code === 0x2d
  );
}

/**
 * A lowercased DNS name of at least two labels (letters, digits, inner hyphens; 1–63 characters each) whose last
 * has a top-level domain's shape, or undefined. A loop, not a regex per label: it runs for every address found.
 */
export function domainName(text: string): string | undefined {
  if (text.length === 0 || text.length > MAX_DOMAIN) return undefined;
  const name = text.toLowerCase();
  return isDomainName(name, 0, name.length) ? name : undefined;
}

/** Whether `text` from `from` to `to` has a DNS name's shape (see domainName), ASCII letters of either case. */
function isDomainName(text: string, from: number, to: number): boolean {
  let labelStart = from;
  let labels = 0;
  let letters = true;
  for (let i = from; i <= to; i++) {
    const code = i < to ? text.charCodeAt(i) : 0x2e;
    if (code === 0x2e) {
      const length = i - labelStart;
      if (length < 1 || length > 63 || text.charCodeAt(labelStart) === 0x2d || text.charCodeAt(i - 1) === 0x2d)
        return false;
      labels += 1;
      if (i < to) {
        labelStart = i + 1;
        letters = true;
      }
    } else if ((code | 0x20) >= 0x61 && (code | 0x20) <= 0x7a) {
      continue;
    } else if ((code >= 0x30 && code <= 0x39) || code === 0x2d) {
      letters = false;
    } else {
      return false;
    }
  }
  // The last label is a top-level domain's: letters only (2–63), or an IDN's `xn--` and 1–59 more.
  const last = to - labelStart;
  return labels >= 2 && ((letters && last >= 2) || (last >= 5 && isXn(text, labelStart)));
}

function isXn(text: string, at: number): boolean {
  return (
    (text.charCodeAt(at) | 0x20) === 0x78 &&
    (text.charCodeAt(at + 1) | 0x20) === 0x6e &&
    text.charCodeAt(at + 2) === 0x2d &&
    text.charCodeAt(at + 3) === 0x2d
  );
}

/** A mail address, lowercased, or undefined: ASCII local part of at most 64 characters and a DNS domain. */
export function emailAddress(text: string): string | undefined {
  const at = text.indexOf('@');
  if (at <= 0 || at !== text.lastIndexOf('@') || at > MAX_LOCAL_PART) return undefined;
  const local = text.slice(0, at);
  for (let i = 0; i < local.length; i++) if (!isLocalChar(local.charCodeAt(i))) return undefined;
  if (local.startsWith('.') || local.endsWith('.')) return undefined;
  // The whole text lowercased is the local part's and the domain's lowercased forms joined, as one flat string
  // (a joined one would be flattened when hashed).
  return domainName(text.slice(at + 1)) === undefined ? undefined : text.toLowerCase();
}

function addEmail(sink: Sink, address: string): void {
  sink.add('email', address);
  sink.add('domain', address.slice(address.indexOf('@') + 1));
}

/** Whether `user@` / `user:password@` at `start` is a URL's user info (`https://user@host`), not an address. */
function inUrlAuthority(text: string, start: number): boolean {
  const before = start > 0 ? text.charCodeAt(start - 1) : 0;
  if (before !== 0x3a && before !== 0x2f) return false;
  let k = start;
  // User info holds no `@`: a walk that meets one is not in an authority (and stays short on `:a@:a@…`).
  while (k > 0 && start - k < MAX_AUTHORITY && !endsAuthority(text.charCodeAt(k - 1))) {
    if (text.charCodeAt(k - 1) === 0x40) return false;
    k -= 1;
  }
  return k >= 3 && text.startsWith('://', k - 3);
}

/** From the first `@` (`first`). */
function scanEmails(text: string, first: number, sink: Sink): void {
  for (let at = first; at !== -1 && !sink.full(); at = text.indexOf('@', at + 1)) {
    let start = at;
    while (start > 0 && at - start < MAX_LOCAL_PART && isLocalChar(text.charCodeAt(start - 1))) start -= 1;
    // Longer than a local part may be: not an address.
    if (start > 0 && isLocalChar(text.charCodeAt(start - 1))) continue;
    // Raw JSON text: `\nbob@…` is an escaped newline before the address, not part of it.
    if (start > 0 && text.charCodeAt(start - 1) === 0x5c) start += 1;
    while (start < at && text.charCodeAt(start) === 0x2e) start += 1;
    if (inUrlAuthority(text, start)) continue;
    let end = at + 1;
    while (end < text.length && end - at - 1 < MAX_DOMAIN && isDomainChar(text.charCodeAt(end))) end += 1;
    if (end < text.length && isDomainChar(text.charCodeAt(end))) continue;
    // A sentence's full stop or a dash after the address is not part of it.
    while (end > at + 1 && (text.charCodeAt(end - 1) === 0x2e || text.charCodeAt(end - 1) === 0x2d)) end -= 1;
    // What emailAddress checks, in place: the run holds only local-part and domain characters around one `@`.
    if (start >= at || text.charCodeAt(at - 1) === 0x2e || !isDomainName(text, at + 1, end)) continue;
    addEmail(sink, text.slice(start, end).toLowerCase());
  }
}

/** Characters that end a URL's authority (`/?#`, whitespace, quotes, brackets, backslash, `,;`). */
function endsAuthority(code: number): boolean {
  return (
    code <= 0x20 ||
    code === 0x2f ||
    code === 0x3f ||
    code === 0x23 ||
    code === 0x22 ||
    code === 0x27 ||
    code === 0x3c ||
    code === 0x3e ||
    code === 0x5c ||
    code === 0x60 ||
    code === 0x2c ||
    code === 0x3b ||
    code === 0x29 ||
    code === 0x7d ||
    code === 0x7c
  );
}

const IPV4_RE = /^\d{1,3}(?:\.\d{1,3}){3}$/;
const IPV6_RE = /^\[[0-9a-f:.]{2,45}\]$/;
const SINGLE_LABEL_RE = /^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$/;

/**
 * The host of a URL's authority (`user@host:port`), normalised: lowercased, no user info, no port, no trailing
 * dot, no leading `www.`. A DNS name, an IPv4 or bracketed IPv6 address, or one label (`localhost`, a service
 * name on an internal network); undefined for anything else.
 */
export function urlHost(authority: string): string | undefined {
  let host = authority.slice(authority.lastIndexOf('@') + 1).toLowerCase();
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    host = close === -1 ? '' : host.slice(0, close + 1);
    return IPV6_RE.test(host) ? host : undefined;
  }
  const colon = host.indexOf(':');
  if (colon !== -1) host = host.slice(0, colon);
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host.startsWith('www.')) host = host.slice(4);
  if (IPV4_RE.test(host) || SINGLE_LABEL_RE.test(host)) return host;
  return domainName(host);
}

/** From the first `://` (`first`). */
function scanUrlHosts(text: string, first: number, sink: Sink): void {
  for (let mark = first; mark !== -1 && !sink.full(); mark = text.indexOf('://', mark + 3)) {
    // A scheme: at least one letter right before `://` (`file:///x` has no host and gives nothing below).
    const before = mark > 0 ? text.charCodeAt(mark - 1) | 0x20 : 0;
    if (before < 0x61 || before > 0x7a) continue;
    let end = mark + 3;
    while (end < text.length && end - mark - 3 < MAX_AUTHORITY && !endsAuthority(text.charCodeAt(end))) end += 1;
    if (end === mark + 3) continue;
    const host = urlHost(text.slice(mark + 3, end));
    if (host !== undefined) sink.add('url_host', host);
  }
}

/**
 * IBAN lengths by country (the SWIFT IBAN registry). A candidate is cut at its country's length, so an IBAN
 * written in groups of four is not merged with the word after it; a country not listed gives no IBAN.
 */
const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28, CH: 21, CR: 22,
  CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FK: 18, FO: 18, FR: 27, GB: 22,
  GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30,
  KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20, LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27,
  MT: 31, MU: 30, NI: 28, NL: 18, NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33,
  SA: 24, SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29,
  VA: 22, VG: 24, XK: 20, YE: 30,
}; // prettier-ignore

/** ISO 7064 MOD 97-10 over an IBAN (country and check digits moved to the end, letters as 10–35): 1 when valid. */
export function ibanChecks(iban: string): boolean {
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (let i = 0; i < rearranged.length; i++) {
    const code = rearranged.charCodeAt(i);
    if (code >= 0x30 && code <= 0x39) remainder = (remainder * 10 + (code - 0x30)) % 97;
    else if (code >= 0x41 && code <= 0x5a) remainder = (remainder * 100 + (code - 0x37)) % 97;
    else return false;
  }
  return remainder === 1;
}

/** A valid IBAN (spaces and dashes removed, uppercased) of exactly its country's length, or undefined. */
export function ibanOf(text: string): string | undefined {
  const compact = text.replace(/[\s-]/g, '').toUpperCase();
  const length = IBAN_LENGTHS[compact.slice(0, 2)];
  if (length === undefined || compact.length !== length || !/^[A-Z]{2}\d{2}[A-Z0-9]+$/.test(compact)) return undefined;
  return ibanChecks(compact) ? compact : undefined;
}

/** Shortest IBAN candidate: country, check digits and 11 more characters. */
const MIN_IBAN_CANDIDATE = 15;
const IBAN_CANDIDATE_RE = /\b[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]){11,30}/g;

function isAlnum(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || ((code | 0x20) >= 0x61 && (code | 0x20) <= 0x7a);
}

function scanIbans(text: string, sink: Sink): void {
  const re = IBAN_CANDIDATE_RE;
  re.lastIndex = 0;
  for (let match = re.exec(text); match !== null && !sink.full(); match = re.exec(text)) {
    const raw = match[0];
    const length = IBAN_LENGTHS[raw.slice(0, 2).toUpperCase()];
    let taken = 0;
    let cut = -1;
    if (length !== undefined) {
      for (let i = 0; i < raw.length && cut === -1; i++)
        if (isAlnum(raw.charCodeAt(i)) && ++taken === length) cut = i + 1;
    }
    const next = match.index + cut;
    const iban =
      cut === -1 || (next < text.length && isAlnum(text.charCodeAt(next))) ? undefined : ibanOf(raw.slice(0, cut));
    if (iban === undefined) {
      // The real IBAN may start inside this candidate (`ref DE89 3704…` read as one run): look again one on.
      re.lastIndex = match.index + 1;
      continue;
    }
    sink.add('account', iban);
    re.lastIndex = next;
  }
}

/** `@name` / `#channel` not inside a word, an address, a URL or an HTML entity; the token itself is bounded. */
const HANDLE_RE = /(?<![\w@.&#/\\-])([@#])([A-Za-z0-9_][A-Za-z0-9_.-]{0,63})/g;
const HEX_COLOUR_RE = /^(?:[0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i;

function scanHandles(text: string, sink: Sink): void {
  const re = HANDLE_RE;
  re.lastIndex = 0;
  for (let match = re.exec(text); match !== null && !sink.full(); match = re.exec(text)) {
    const [whole, sigil, body] = match as unknown as [string, string, string];
    const after = match.index + whole.length;
    // Longer than a handle may be, or an address (`@host.example`-like tails are cut by the email scan).
    if (after < text.length && /[A-Za-z0-9_.@-]/.test(text.charAt(after))) continue;
    const token = body.replace(/[.-]+$/, '');
    if (token === '') continue;
    if (sigil === '#' && (!/^[A-Za-z]/.test(token) || HEX_COLOUR_RE.test(token))) continue;
    sink.add('handle', token.toLowerCase());
  }
}
