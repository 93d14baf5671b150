/**
 * Who a tool call deals with: the counterparties its recorded arguments and result name (mail addresses and their
 * domains, IBANs and account numbers, URL hosts, user and channel handles, phone numbers), the largest amount it
 * was given and the keys it was called with. Pure and bounded; bad input gives fewer facts, never an exception.
 * The contract is schemas/conventions.md#counterparties.
 *
 * Counterparties leave here only as keyed hashes (`key`: the first 16 hex digits of SHA-256 over the secret, the
 * tenant, the kind and the normalised value, newline-separated): equal values of one tenant compare equal, the
 * values themselves are not stored, and without the secret a hash cannot be checked against a guessed address.
 */
import type { Counterparty, CounterpartyKind, ToolCallDetail } from '../../schemas/events.ts';
import { MAX_ARGUMENTS_LENGTH, MAX_DEPTH, MAX_VALUES } from './arguments.ts';
import { domainName, ibanOf, scanText, urlHost } from './counterparty-text.ts';
import { instructionCues } from './instruction-cues.ts';
import type { Sink } from './counterparty-text.ts';
import { sha256Hex } from './sha256.ts';

/** Longest result text read (a longer one is read up to this length, as free text). */
export const MAX_RESULT_LENGTH = 64 * 1024;
/** Most counterparties per list (arguments, result), after deduplication; the first found are kept. */
export const MAX_COUNTERPARTIES = 32;
export const MAX_ARGUMENT_KEYS = 32;
export const MAX_ARGUMENT_KEY_LENGTH = 64;
/**
 * The hashing secret when none is configured (TRIPLINE_COUNTERPARTY_KEY). Public: with it, anyone holding the
 * events can confirm a guessed address; deployments set their own.
 */
export const DEFAULT_COUNTERPARTY_KEY = 'tripline-default-counterparty-key';

export type ToolContentFacts = Pick<
  ToolCallDetail,
  'counterparties' | 'resultCounterparties' | 'resultRecorded' | 'resultInstructions' | 'amount' | 'argumentKeys'
>;

export interface CounterpartyHashing {
  secret: string;
  tenant: string;
}

/**
 * Most keys the process-wide memo of `counterpartyKey` holds. The memo is module state, but only a memo of a pure
 * function (its entries are told apart by secret, tenant, kind and value, so no caller sees another's keys, and
 * a hit returns what the hash would): the spans of a process keep naming the same people and hosts, and the hash
 * is most of a counterparty's cost. Two generations of half this size each: a miss is added to the newer, a hit
 * in the older is copied to the newer, and when the newer is full the older is dropped (the least recently used
 * half, roughly).
 */
export const MAX_CACHED_KEYS = 65_536;
const GENERATION_SIZE = MAX_CACHED_KEYS / 2;

/** Keys of one secret and tenant, by kind, then by normalised value. */
type KeysByKind = Partial<Record<CounterpartyKind, Map<string, string>>>;
/** One generation: secret → tenant → kind → value → key (nested maps: no concatenated string per lookup). */
type Generation = Map<string, Map<string, KeysByKind>>;

let newer: Generation = new Map();
let older: Generation = new Map();
let newerSize = 0;

function keysOf(generation: Generation, hashing: CounterpartyHashing, create: boolean): KeysByKind | undefined {
  let tenants = generation.get(hashing.secret);
  if (tenants === undefined) {
    if (!create) return undefined;
    generation.set(hashing.secret, (tenants = new Map<string, KeysByKind>()));
  }
  let kinds = tenants.get(hashing.tenant);
  if (kinds === undefined && create) tenants.set(hashing.tenant, (kinds = {}));
  return kinds;
}

/** The keyed hash of one normalised value (see the module's comment), memoised (MAX_CACHED_KEYS). */
export function counterpartyKey(hashing: CounterpartyHashing, kind: CounterpartyKind, value: string): string {
  return keysOf(newer, hashing, false)?.[kind]?.get(value) ?? remember(hashing, kind, value);
}

/** A key not in the newer generation: taken from the older or computed, then added to the newer. */
function remember(hashing: CounterpartyHashing, kind: CounterpartyKind, value: string): string {
  const key =
    keysOf(older, hashing, false)?.[kind]?.get(value) ??
    sha256Hex(`${hashing.secret}\n${hashing.tenant}\n${kind}\n${value}`).slice(0, 16);
  if (newerSize >= GENERATION_SIZE) {
    older = newer;
    newer = new Map();
    newerSize = 0;
  }
  const kinds = keysOf(newer, hashing, true) as KeysByKind;
  let values = kinds[kind];
  if (values === undefined) kinds[kind] = values = new Map();
  values.set(value, key);
  newerSize += 1;
  return key;
}

/**
 * What a tool call's arguments (as the framework recorded them, JSON or not) and its recorded result say.
 * `result` undefined: the framework recorded none (`resultRecorded: false`).
 */
export function toolContentFacts(
  args: string | undefined,
  result: string | undefined,
  hashing: CounterpartyHashing,
): ToolContentFacts {
  const facts: ToolContentFacts = { resultRecorded: result !== undefined };
  if (args !== undefined) {
    const found = new Found();
    const parsed = readContent(args, MAX_ARGUMENTS_LENGTH, found);
    const amount = parsed === undefined ? undefined : largestAmount(parsed);
    if (amount !== undefined) facts.amount = amount;
    if (isPlainObject(parsed)) facts.argumentKeys = argumentKeys(parsed);
    const list = found.hashed(hashing);
    if (list.length > 0) facts.counterparties = list;
  }
  if (result !== undefined) {
    const found = new Found();
    readContent(result, MAX_RESULT_LENGTH, found);
    const list = found.hashed(hashing);
    if (list.length > 0) facts.resultCounterparties = list;
    // Cues matter only where the result names someone the agent may then hand something to.
    if (list.length > 0) {
      const cues = instructionCues(result);
      if (cues.length > 0) facts.resultInstructions = cues;
    }
  }
  return facts;
}

/** Normalised values, deduplicated by kind and value, in the order found, at most MAX_COUNTERPARTIES. */
class Found implements Sink {
  readonly #kinds: CounterpartyKind[] = [];
  readonly #values: string[] = [];
  #scanned: Set<string> | undefined;

  add(kind: CounterpartyKind, value: string): void {
    const values = this.#values;
    const kinds = this.#kinds;
    if (values.length >= MAX_COUNTERPARTIES) return;
    // A linear search: at most MAX_COUNTERPARTIES entries, and no set to build or string to hash per call.
    for (let i = 0; i < values.length; i++) if (values[i] === value && kinds[i] === kind) return;
    kinds.push(kind);
    values.push(value);
  }

  /**
   * Scans a string value as free text, unless this list scanned the same text before: that scan found the same
   * values, which are here already or were cut by the bound (rows of a result repeat their notes and links).
   */
  scan(text: string): void {
    // Grows by one per value walked: at most MAX_VALUES.
    const scanned = (this.#scanned ??= new Set());
    if (scanned.has(text)) return;
    scanned.add(text);
    scanText(text, this);
  }

  full(): boolean {
    return this.#values.length >= MAX_COUNTERPARTIES;
  }

  hashed(hashing: CounterpartyHashing): Counterparty[] {
    const list: Counterparty[] = [];
    // This secret and tenant's maps are looked up once per list, and again after a miss (which may start a generation).
    let current = keysOf(newer, hashing, false);
    for (let i = 0; i < this.#values.length; i++) {
      const kind = this.#kinds[i] as CounterpartyKind;
      const value = this.#values[i] as string;
      let key = current?.[kind]?.get(value);
      if (key === undefined) {
        key = remember(hashing, kind, value);
        current = keysOf(newer, hashing, false);
      }
      list.push({ kind, key });
    }
    return list;
  }
}

/**
 * Reads one recorded text: JSON (up to `limit`) is walked, values under telling keys read by their key and every
 * string scanned as free text; anything else, a longer text (its first `limit` characters) or JSON with more
 * values than the walk visits is scanned as free text. Returns the parsed JSON (undefined when it is none).
 */
function readContent(text: string, limit: number, found: Found): unknown {
  const head = text.length > limit ? text.slice(0, limit) : text;
  const parsed = text.length > limit ? undefined : parseJson(head);
  if (parsed === undefined) {
    scanText(head, found);
    return undefined;
  }
  if (!walk(parsed.value, found)) scanText(head, found);
  return parsed.value;
}

function parseJson(text: string): { value: unknown } | undefined {
  // JSON may start with spaces, tabs and line breaks only (other white space fails JSON.parse as any text does).
  let i = 0;
  let first = text.charCodeAt(0);
  while (first === 0x20 || first === 0x0a || first === 0x0d || first === 0x09) first = text.charCodeAt(++i);
  if (first !== 0x7b && first !== 0x5b && first !== 0x22) return undefined;
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Visits a parsed JSON value as services/core/arguments.ts does (depth 4, 256 values; a list's items under the
 * list's key). Returns false when the budget ran out before every value was seen.
 */
function walk(root: unknown, found: Found): boolean {
  let budget = MAX_VALUES;
  let complete = true;
  const visit = (value: unknown, key: string | undefined, depth: number): void => {
    if (found.full()) return;
    if (budget <= 0) {
      complete = false;
      return;
    }
    budget -= 1;
    const role = key === undefined ? undefined : roleOf(key);
    if (typeof value === 'string') readString(value, role, found);
    else if (typeof value === 'number') readNumber(value, role, found);
    if (value === null || typeof value !== 'object') return;
    if (depth >= MAX_DEPTH) {
      complete = false;
      return;
    }
    if (Array.isArray(value)) {
      for (const item of value) visit(item, key, depth + 1);
    } else {
      for (const childKey in value) visit((value as Record<string, unknown>)[childKey], childKey, depth + 1);
    }
  };
  visit(root, undefined, 0);
  return complete;
}

type KeyRole = 'account' | 'handle' | 'handle_id' | 'phone' | 'host' | 'amount';

const ACCOUNT_KEY_RE = /(?:^|_)(?:accounts?|acct|iban|payee|beneficiary)(?:_|$)/;
const PHONE_KEY_RE = /(?:^|_)(?:phones?|mobile|cell|tel|telephone|sms|whatsapp|fax|msisdn)(?:_|$)/;
const HANDLE_KEY_RE =
  /^(?:to|cc|bcc|users?|user_?names?|login|handles?|channels?|channel_?name|recipients?|recipient_?name|share_?with|shared_?with|assignees?|invitees?|invite|members?|reviewers?|mentions?|owner|new_?owner|collaborators?|grantee|followers?|dm)$/;
/** Ids of users, chats and channels: digits alone name someone there (a Telegram chat, a numeric user id). */
const HANDLE_ID_KEY_RE = /^(?:user|chat|channel|recipient|member|assignee|owner)_?ids?$/;
const HOST_KEY_RE = /^(?:host|hostname|server|domain|website|site|remote|destination)$/;
const AMOUNT_KEY_RE = /(?:^|_)(?:amounts?|sum|totals?|prices?|quantity|qty|cost|fees?|subtotal)(?:_|$)|^values?$/;

/** A part every telling key has (most keys, `id`, `name`, `status`…, have none: one test rules them out). */
const TELLING_PART_RE =
  /ac|iban|pay|benef|pho|mob|cell|tel|sms|whats|fax|msisdn|num|to|cc|us|login|hand|chan|chat|recip|shar|assign|invit|memb|review|ment|own|collab|grant|follow|dm|host|serv|dom|site|remote|dest|amount|sum|total|pric|qu|qty|cost|fee|val/i;

/**
 * Most key roles remembered process-wide (module state, but only a memo of the pure `keyRole`): rows of a result
 * repeat their keys, and tools their argument names, so each is worked out about once. Emptied when full; keys
 * longer than MAX_ARGUMENT_KEY_LENGTH have no role and are not remembered.
 */
const MAX_KEY_ROLES = 4096;
const keyRoles = new Map<string, KeyRole | null>();

function roleOf(key: string): KeyRole | undefined {
  if (key.length > MAX_ARGUMENT_KEY_LENGTH) return undefined;
  const known = keyRoles.get(key);
  if (known !== undefined) return known ?? undefined;
  const role = keyRole(key);
  if (keyRoles.size >= MAX_KEY_ROLES) keyRoles.clear();
  keyRoles.set(key, role ?? null);
  return role;
}

/** What a key says its value is: `to_account`, `toAccount` and `To-Account` alike. */
function keyRole(key: string): KeyRole | undefined {
  if (key.length > MAX_ARGUMENT_KEY_LENGTH || !TELLING_PART_RE.test(key)) return undefined;
  const name = /^[a-z0-9_]+$/.test(key)
    ? key
    : key
        .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
        .toLowerCase()
        .replace(/[\s.-]+/g, '_');
  if (ACCOUNT_KEY_RE.test(name)) return 'account';
  if (PHONE_KEY_RE.test(name) || /(?:^|_)(?:to|from)_number$/.test(name)) return 'phone';
  if (HANDLE_KEY_RE.test(name)) return 'handle';
  if (HANDLE_ID_KEY_RE.test(name)) return 'handle_id';
  if (HOST_KEY_RE.test(name)) return 'host';
  if (AMOUNT_KEY_RE.test(name)) return 'amount';
  return undefined;
}

function readString(value: string, role: KeyRole | undefined, found: Found): void {
  found.scan(value);
  const text = value.trim();
  if (role === undefined || text === '' || text.includes('@') || text.includes('://')) return;
  if (role === 'account') {
    const account = accountNumber(text);
    if (account !== undefined) found.add('account', account);
  } else if (role === 'phone' || (role === 'handle' && text.startsWith('+'))) {
    const phone = phoneNumber(text);
    if (phone !== undefined) found.add('phone', phone);
  } else if (role === 'handle' || role === 'handle_id') {
    const handle = handleName(text, role === 'handle_id');
    if (handle !== undefined) found.add('handle', handle);
  } else if (role === 'host') {
    const host = domainName(text) === undefined ? undefined : urlHost(text);
    if (host !== undefined) found.add('url_host', host);
  }
}

function readNumber(value: number, role: KeyRole | undefined, found: Found): void {
  if (!Number.isSafeInteger(value) || (value < 0 && role !== 'handle_id')) return;
  if (role === 'account' && value >= 1000) found.add('account', String(value));
  else if (role === 'handle_id') found.add('handle', String(value));
  else if (role === 'phone') {
    const phone = phoneNumber(String(value));
    if (phone !== undefined) found.add('phone', phone);
  }
}

/**
 * An account identifier under an account-like key: an IBAN (compact, uppercased), else 4–64 letters, digits, `_`
 * or `:` once spaces, dots, dashes and slashes are removed, with at least one digit (a name is not an account).
 */
export function accountNumber(text: string): string | undefined {
  const iban = ibanOf(text);
  if (iban !== undefined) return iban;
  if (text.length > 128) return undefined;
  const compact = text.replace(/[\s./-]/g, '').toUpperCase();
  return /^[A-Z0-9_:]{4,64}$/.test(compact) && /\d/.test(compact) ? compact : undefined;
}

/** A phone number as digits with a leading `+` when it was international (`+` or `00`): 7–15 digits, or undefined. */
export function phoneNumber(text: string): string | undefined {
  const trimmed = text.trim();
  if (trimmed.length > 40 || !/^\+?[\d\s().\-/]+$/.test(trimmed)) return undefined;
  let digits = trimmed.replace(/\D/g, '');
  const international = trimmed.startsWith('+') || digits.startsWith('00');
  if (!trimmed.startsWith('+') && digits.startsWith('00')) digits = digits.slice(2);
  if (digits.length < 7 || digits.length > 15) return undefined;
  return international ? `+${digits}` : digits;
}

/**
 * A user or channel named under a recipient-like key: lowercased, one leading `@` or `#` dropped, inner spaces
 * collapsed; at most 64 characters, no control characters. Values without a letter (a date, a count) are no
 * handle, except under an id key (`chat_id`, `user_id`).
 */
export function handleName(text: string, digitsAllowed = false): string | undefined {
  const name = text.replace(/^[@#]/, '').replace(/\s+/g, ' ').trim().toLowerCase();
  if (name === '' || name.length > 64 || /\p{Cc}/u.test(name)) return undefined;
  if (!/\p{L}/u.test(name) && !(digitsAllowed && /^-?\d+$/.test(name))) return undefined;
  return name;
}

/** Numeric strings count as numbers: `1200`, `-3.5`, `1,200.50`, `$1,200`, `1200 EUR`. */
const NUMERIC_RE = /^[$€£¥]?\s?([+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)\s?(?:[A-Za-z]{3})?$/;

function numericValue(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string' || value.length > 40) return undefined;
  const match = NUMERIC_RE.exec(value.trim());
  if (match?.[1] === undefined) return undefined;
  const parsed = Number(match[1].replaceAll(',', ''));
  return Number.isFinite(parsed) ? parsed : undefined;
}

/** The largest finite number under an amount-like key, walking as `walk` does. */
function largestAmount(root: unknown): number | undefined {
  let budget = MAX_VALUES;
  let largest: number | undefined;
  const visit = (value: unknown, amountKey: boolean, depth: number): void => {
    if (budget <= 0) return;
    budget -= 1;
    if (amountKey) {
      const amount = numericValue(value);
      if (amount !== undefined && (largest === undefined || amount > largest)) largest = amount;
    }
    if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH) return;
    if (Array.isArray(value)) {
      for (const item of value) visit(item, amountKey, depth + 1);
    } else {
      for (const key in value) visit((value as Record<string, unknown>)[key], roleOf(key) === 'amount', depth + 1);
    }
  };
  visit(root, false, 0);
  return largest;
}

const ARGUMENT_KEY_RE = /^[A-Za-z_$][\w$.-]*$/;

/** Top-level keys that look like parameter names (not data: no address or URL), sorted, the first 32. */
function argumentKeys(args: Record<string, unknown>): string[] {
  const keys: string[] = [];
  for (const key in args) if (key.length <= MAX_ARGUMENT_KEY_LENGTH && ARGUMENT_KEY_RE.test(key)) keys.push(key);
  return keys.sort().slice(0, MAX_ARGUMENT_KEYS);
}
