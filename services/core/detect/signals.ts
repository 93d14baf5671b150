/**
 * Small pure classifiers over one event's fields: which host an event talks to, whether it sends data out,
 * whether it reads a secret, how a resource name is normalised, whether a scope is administrative.
 * Heuristics live here, in one place, so they can be tested and tuned on their own.
 */
import type { AgentEvent } from '../../../schemas/events.ts';

/** Classification levels in increasing sensitivity; index = rank. Unknown or missing = -1. */
export const CLASSIFICATION_RANK: Readonly<Record<string, number>> = Object.freeze({
  public: 0,
  internal: 1,
  confidential: 2,
  restricted: 3,
});
export const CLASSIFICATION_NAMES = ['public', 'internal', 'confidential', 'restricted'] as const;

export function classificationRank(level: string | undefined): number {
  if (level === undefined) return -1;
  return Object.hasOwn(CLASSIFICATION_RANK, level) ? (CLASSIFICATION_RANK[level] ?? -1) : -1;
}

const URL_RE = /^[a-z][a-z0-9+.-]*:\/\/([^/?#@]*@)?(\[[^\]]+\]|[^/?#:]+)/i;
const HOSTLIKE_RE = /^([a-z0-9-]+(?:\.[a-z0-9-]+)+)(?::\d+)?(?:[/?#].*)?$/i;
const IPV4_RE = /^\d{1,3}(?:\.\d{1,3}){3}$/;
/** Last labels that make a dotted name without a path a host rather than `namespace.collection`. */
const HOST_TLDS = new Set([
  'com',
  'net',
  'org',
  'io',
  'ai',
  'dev',
  'app',
  'co',
  'xyz',
  'ru',
  'cn',
  'internal',
  'local',
  'corp',
  'cloud',
  'me',
  'info',
  'biz',
  'site',
  'online',
  'top',
  'sh',
  'tk',
  'cc',
  'us',
  'uk',
  'de',
  'fr',
  'eu',
  'example',
  'test',
  'invalid',
  'lan',
  'svc',
  'localhost',
]);

/**
 * The host a target string names: the host of a URL (`https://h:443/p` → `h`), a `host/path` or `host:port`,
 * or a bare dotted name whose last label is a known top-level domain. `crm.customers` is not a host.
 * Lower-cased; undefined when the string does not name a host.
 */
export function hostOf(target: string | undefined): string | undefined {
  if (target === undefined || target === '') return undefined;
  const url = URL_RE.exec(target);
  if (url !== null) {
    const h = (url[2] ?? '').toLowerCase();
    return h === '' ? undefined : h;
  }
  const m = HOSTLIKE_RE.exec(target);
  if (m === null) return target.toLowerCase() === 'localhost' ? 'localhost' : undefined;
  const host = (m[1] ?? '').toLowerCase();
  const rest = target.slice(host.length);
  if (rest !== '' || IPV4_RE.test(host)) return host;
  const tld = host.slice(host.lastIndexOf('.') + 1);
  return HOST_TLDS.has(tld) ? host : undefined;
}

/** The organisation a host belongs to, approximated by its last two labels (`api.crm.acme.io` → `acme.io`). */
export function hostFamily(host: string): string {
  if (IPV4_RE.test(host)) return host.slice(0, host.lastIndexOf('.')) + '.*';
  const last = host.lastIndexOf('.');
  if (last <= 0) return host;
  const prev = host.lastIndexOf('.', last - 1);
  return prev < 0 ? host : host.slice(prev + 1);
}

const EGRESS_TOOL_RE =
  /http|fetch|request|curl|wget|post|upload|send|webhook|e-?mail|smtp|slack|notify|publish|browse|web|download|ftp|s3_put|put_object/i;
const WRITE_OP_RE = /write|insert|update|upsert|put|post|patch|upload|send|export|copy|push|publish|create/i;

/** The host an event talks to (tool target, `data.host`, or a URL resource), if any. */
export function eventHost(event: AgentEvent): string | undefined {
  if (event.kind === 'tool_call') return boundedHost(hostOf(event.tool?.target));
  if (event.kind === 'data_access') {
    const d = event.data;
    if (d === undefined) return undefined;
    if (d.host !== undefined && d.host !== '') return boundedKey(d.host.toLowerCase());
    return URL_RE.test(d.resource) ? boundedHost(hostOf(d.resource)) : undefined;
  }
  return undefined;
}

function boundedHost(host: string | undefined): string | undefined {
  return host === undefined ? undefined : boundedKey(host);
}

/**
 * Longest agent-given string kept as a key of task state (tool names, hosts, resource keys, privilege actions,
 * scopes, failing targets): longer ones are cut to this many characters, so one span cannot make a key of megabytes
 * and every feature reads the same key the state holds.
 */
export const MAX_KEY_CHARS = 256;

/** An agent-given string as a key: at most MAX_KEY_CHARS characters. */
export function boundedKey(text: string): string {
  return text.length <= MAX_KEY_CHARS ? text : text.slice(0, MAX_KEY_CHARS);
}

/**
 * Whether the event sends something out to `host`: a tool whose name says HTTP/upload/mail/webhook or that
 * writes to a host target, or a data write to a remote host. Reads from a host are contact, not egress.
 */
export function isEgress(event: AgentEvent, host: string | undefined): boolean {
  if (host === undefined) return false;
  if (event.kind === 'tool_call') {
    const t = event.tool;
    if (t === undefined) return false;
    if (t.sideEffect === 'read') return false;
    return (
      EGRESS_TOOL_RE.test(t.name) ||
      t.sideEffect === 'write' ||
      t.sideEffect === 'destructive' ||
      URL_RE.test(t.target ?? '')
    );
  }
  if (event.kind === 'data_access') {
    const op = event.data?.operation;
    return op !== undefined && WRITE_OP_RE.test(op);
  }
  return false;
}

const GENERIC_HTTP_RE = /http|curl|wget|fetch|request|webhook|upload|browse|web_?(get|post)|send_?data/i;

/**
 * Whether an egress goes through a general-purpose channel (an HTTP/fetch/upload tool that takes any URL, or a
 * data write to a remote host) rather than a purpose-named integration (`notify_slack`, `deploy`).
 */
export function isGenericEgress(event: AgentEvent): boolean {
  if (event.kind === 'tool_call') return GENERIC_HTTP_RE.test(toolName(event));
  return event.kind === 'data_access';
}

const SECRET_RE =
  /secret|credential|passw(or)?d|passwd|api[_-]?key|private[_-]?key|access[_-]?key|token|vault|\.pem\b|\.env\b|ssh|kms|keychain|keystore|shadow$/i;

/** Whether the event reads a secret: restricted data, or a resource/tool whose name says secret, token, vault… */
export function isSecretRead(event: AgentEvent): boolean {
  if (event.kind === 'data_access') {
    const d = event.data;
    if (d === undefined) return false;
    if (d.operation !== undefined && WRITE_OP_RE.test(d.operation)) return false;
    return d.classification === 'restricted' || SECRET_RE.test(d.resource);
  }
  if (event.kind === 'tool_call') {
    const t = event.tool;
    if (t === undefined || t.sideEffect === 'write' || t.sideEffect === 'destructive') return false;
    return SECRET_RE.test(t.name) && !EGRESS_TOOL_RE.test(t.name);
  }
  return false;
}

const ADMIN_SCOPE_RE = /(^|[:._/\s-])(admin|administrator|root|superuser|su|sudo|owner|all)($|[:._/\s-])|\*/i;

/** Administrative scopes: admin, root, owner, superuser, sudo, `…:all`, and any wildcard (`*`, `iam:*`). */
export function isAdminScope(scope: string): boolean {
  return ADMIN_SCOPE_RE.test(scope);
}

const UUID_RE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const HEX_RE = /\b[0-9a-f]{16,}\b/gi;
const DIGITS_RE = /\d+/g;

/**
 * A resource's key for learning: lower-cased, URL scheme and query dropped, ids (UUIDs, long hex, digit runs)
 * replaced by `#`, so `tickets/1234` and `tickets/98` are one resource.
 */
export function resourceKey(resource: string): string {
  let r = boundedKey(resource).toLowerCase();
  const scheme = r.indexOf('://');
  if (scheme > 0) r = r.slice(scheme + 3);
  const q = r.search(/[?#]/);
  if (q >= 0) r = r.slice(0, q);
  return r.replace(UUID_RE, '#').replace(HEX_RE, '#').replace(DIGITS_RE, '#');
}

/** The namespace of a resource key: what comes before the first `.` or `/` (for URLs: the host). */
export function namespaceOf(key: string): string {
  const trimmed = key.startsWith('/') ? key.slice(1) : key;
  const slash = trimmed.indexOf('/');
  const head = slash >= 0 ? trimmed.slice(0, slash) : trimmed;
  if (slash >= 0 && head.includes('.')) return head; // `host/path`
  const dot = head.indexOf('.');
  return dot > 0 ? head.slice(0, dot) : head;
}

/** The tool name of a tool-call event (the span name when the detail is missing). */
export function toolName(event: AgentEvent): string {
  return boundedKey(event.tool?.name ?? event.name);
}

/** What a sink call does with its counterparty, for reasons people read. */
export type SinkKind = 'money' | 'mail' | 'share' | 'message' | 'invite' | 'data';

const MONEY_WORDS = new Set(['pay', 'payment', 'payments', 'transfer', 'wire', 'remit', 'payout', 'refund', 'money']);
const MAIL_WORDS = new Set(['email', 'mail', 'reply', 'smtp']);
const SHARE_WORDS = new Set(['share', 'upload', 'publish']);
const MESSAGE_WORDS = new Set(['post', 'forward', 'message', 'dm', 'chat', 'notify', 'send', 'submit']);
const INVITE_WORDS = new Set(['invite', 'grant', 'event', 'meeting']);
/** A leading verb that says the call only reads (a name like `read_email` is no sink unless declared a write). */
const READ_VERBS = new Set([
  'get',
  'read',
  'list',
  'search',
  'fetch',
  'lookup',
  'find',
  'query',
  'view',
  'check',
  'show',
]);
const MAX_NAME_WORDS = 8;

/** `sendEmail`, `send-email`, `send_email` → `['send', 'email']` (lower-cased, at most MAX_NAME_WORDS words). */
function nameWords(name: string): string[] {
  return name
    .slice(0, 128)
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w !== '')
    .slice(0, MAX_NAME_WORDS);
}

/**
 * Whether a tool call hands something to its counterparties (sends, pays, shares, posts, invites): a call declared
 * `write` or `destructive`, or one whose name says so (send, pay, transfer, share, forward, post, invite, email,
 * upload, wire…) and that is not declared read-only nor named after a reading verb (`read_email`, `get_payees`).
 * Undefined when it is no sink; else what kind of hand-over, for reasons.
 */
export function sinkKind(tool: {
  name: string;
  sideEffect?: string | undefined;
  amount?: number | undefined;
}): SinkKind | undefined {
  if (tool.sideEffect === 'read') return undefined;
  const words = nameWords(tool.name);
  const declared = tool.sideEffect === 'write' || tool.sideEffect === 'destructive';
  const has = (set: ReadonlySet<string>): boolean => words.some((w) => set.has(w));
  const money = has(MONEY_WORDS) || (tool.amount !== undefined && Number.isFinite(tool.amount) && tool.amount > 0);
  const kind: SinkKind | undefined = money
    ? 'money'
    : has(SHARE_WORDS)
      ? 'share'
      : has(INVITE_WORDS)
        ? 'invite'
        : has(MAIL_WORDS)
          ? 'mail'
          : has(MESSAGE_WORDS)
            ? 'message'
            : undefined;
  if (declared) return kind ?? 'data';
  if (kind === undefined || READ_VERBS.has(words[0] ?? '')) return undefined;
  return kind;
}
