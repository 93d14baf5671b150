/**
 * Counterparties of tool calls (services/core/counterparties.ts, counterparty-text.ts): each kind and its
 * normalisation, keyed hashes, deduplication, the bounds, and hostile input (near-misses, deep and invalid JSON,
 * lone surrogates) costing bounded time and never throwing.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  MAX_ARGUMENT_KEYS,
  MAX_CACHED_KEYS,
  MAX_COUNTERPARTIES,
  MAX_RESULT_LENGTH,
  accountNumber,
  counterpartyKey,
  handleName,
  phoneNumber,
  toolContentFacts,
} from '../../services/core/counterparties.ts';
import { emailAddress, ibanChecks, ibanOf, urlHost } from '../../services/core/counterparty-text.ts';
import type { Counterparty, CounterpartyKind } from '../../schemas/events.ts';

const hashing = { secret: 'unit-test-secret-0123456789', tenant: 'acme' };
const cp = (kind: CounterpartyKind, value: string): Counterparty => ({
  kind,
  key: counterpartyKey(hashing, kind, value),
});
const facts = (args: string | undefined, result?: string) => toolContentFacts(args, result, hashing);

describe('keyed hashes', () => {
  it('are the first 16 hex digits of SHA-256 over secret, tenant, kind and value, newline-separated', () => {
    const expected = createHash('sha256')
      .update('unit-test-secret-0123456789\nacme\nemail\nbob@example.com')
      .digest('hex')
      .slice(0, 16);
    expect(counterpartyKey(hashing, 'email', 'bob@example.com')).toBe(expected);
  });

  it('differ by tenant, kind and secret', () => {
    const base = counterpartyKey(hashing, 'handle', 'bob');
    expect(counterpartyKey({ ...hashing, tenant: 'other' }, 'handle', 'bob')).not.toBe(base);
    expect(counterpartyKey(hashing, 'account', 'bob')).not.toBe(base);
    expect(counterpartyKey({ ...hashing, secret: 'another-secret-0123456789' }, 'handle', 'bob')).not.toBe(base);
  });

  it('stay exact past the bound of their process-wide memo, for every secret and tenant', () => {
    const node = (secret: string, tenant: string, value: string): string =>
      createHash('sha256').update(`${secret}\n${tenant}\nhandle\n${value}`).digest('hex').slice(0, 16);
    const other = { secret: 'another-secret-0123456789', tenant: 'globex' };
    expect(counterpartyKey(hashing, 'handle', 'first')).toBe(node(hashing.secret, 'acme', 'first'));
    // Fills both generations of the memo past MAX_CACHED_KEYS, `first` being asked for again half way.
    for (let i = 0; i < MAX_CACHED_KEYS + 100; i++) {
      counterpartyKey(hashing, 'handle', `user-${String(i)}`);
      if (i === MAX_CACHED_KEYS / 2 + 10) counterpartyKey(hashing, 'handle', 'first');
    }
    for (const value of ['first', 'user-0', `user-${String(MAX_CACHED_KEYS)}`]) {
      expect(counterpartyKey(hashing, 'handle', value)).toBe(node(hashing.secret, 'acme', value));
      expect(counterpartyKey(other, 'handle', value)).toBe(node(other.secret, other.tenant, value));
      expect(counterpartyKey({ ...hashing, tenant: 'globex' }, 'handle', value)).toBe(
        node(hashing.secret, 'globex', value),
      );
    }
  });
});

describe('what is extracted', () => {
  it('mail addresses, lowercased, with their domain', () => {
    expect(facts('{"to":"Bob.Smith+inv@Example.COM","body":"hi"}').counterparties).toEqual([
      cp('email', 'bob.smith+inv@example.com'),
      cp('domain', 'example.com'),
    ]);
    expect(emailAddress('bob@localhost')).toBeUndefined();
    expect(emailAddress('.bob@example.com')).toBeUndefined();
    expect(emailAddress('bob@-example.com')).toBeUndefined();
  });

  it('mail addresses in free text, without the full stop after them or a JSON escape before them', () => {
    expect(facts(undefined, 'Sent to alice@corp.example. Cc: "\\ncarol@corp.example"').resultCounterparties).toEqual([
      cp('email', 'alice@corp.example'),
      cp('domain', 'corp.example'),
      cp('email', 'carol@corp.example'),
    ]);
  });

  it('IBANs anywhere, compact and uppercased, only with a valid mod-97 check and the country length', () => {
    expect(ibanOf('DE89 3704 0044 0532 0130 00')).toBe('DE89370400440532013000');
    expect(ibanOf('gb82-west-1234-5698-7654-32')).toBe('GB82WEST12345698765432');
    expect(ibanChecks('DE89370400440532013001')).toBe(false);
    expect(ibanOf('DE89370400440532013001')).toBeUndefined();
    expect(ibanOf('DE8937040044053201300')).toBeUndefined();
    const text = 'Pay ref XX00 then DE89 3704 0044 0532 0130 00 EUR, not DE89 3704 0044 0532 0130 01.';
    expect(facts(undefined, text).resultCounterparties).toEqual([cp('account', 'DE89370400440532013000')]);
    // An IBAN run on into more digits is no IBAN of its country's length.
    expect(facts(undefined, 'DE8937040044053201300099').resultCounterparties).toBeUndefined();
  });

  it('account numbers under account-like keys, as numbers too; names under them are no account', () => {
    const args = JSON.stringify({
      to_account: '1234-5678-90',
      recipientAccount: 987654321,
      payee: 'ACME Corp',
      beneficiary: { iban: 'GB82 WEST 1234 5698 7654 32' },
      note: '12345678',
    });
    expect(facts(args).counterparties).toEqual([
      cp('account', '1234567890'),
      cp('account', '987654321'),
      cp('account', 'GB82WEST12345698765432'),
    ]);
    expect(accountNumber('acct_1Nv0FGQ9RKHgCVdK')).toBe('ACCT_1NV0FGQ9RKHGCVDK');
    expect(accountNumber('savings')).toBeUndefined();
  });

  it('URL hosts: lowercased, without user info, port, trailing dot or leading www.', () => {
    const result =
      'see https://user:pw@WWW.Files.Example.org.:8443/a?b#c and http://[2001:db8::1]:80/ and file:///etc/x';
    expect(facts(undefined, result).resultCounterparties).toEqual([
      cp('url_host', 'files.example.org'),
      cp('url_host', '[2001:db8::1]'),
    ]);
    expect(urlHost('10.0.0.7:5432')).toBe('10.0.0.7');
    // User info in a URL is no address; a mailto: link is.
    expect(facts(undefined, 'https://bob@host.example/x mailto:carol@host.example').resultCounterparties).toEqual([
      cp('email', 'carol@host.example'),
      cp('domain', 'host.example'),
      cp('url_host', 'host.example'),
    ]);
    expect(urlHost('exa mple')).toBeUndefined();
    expect(facts('{"host":"www.Mirror.Example.net"}').counterparties).toEqual([cp('url_host', 'mirror.example.net')]);
  });

  it('handles under recipient-like keys and @name / #channel tokens in text', () => {
    const args = JSON.stringify({
      channel: '#Finance-Ops',
      share_with: ['Alice', '@bob'],
      assignee: 'Carol  Jones',
      chat_id: -1001234567,
      to: '2024-05-01',
      message: 'ping @dave and #release-train; colour #fff, issue #123, mail eve@corp.example, page.html#top',
    });
    expect(facts(args).counterparties).toEqual([
      cp('handle', 'finance-ops'),
      cp('handle', 'alice'),
      cp('handle', 'bob'),
      cp('handle', 'carol jones'),
      cp('handle', '-1001234567'),
      cp('email', 'eve@corp.example'),
      cp('domain', 'corp.example'),
      cp('handle', 'dave'),
      cp('handle', 'release-train'),
    ]);
    expect(handleName('12345')).toBeUndefined();
    expect(handleName('12345', true)).toBe('12345');
  });

  it('phone numbers under phone-like keys (and + numbers under recipient keys) as digits with a leading +', () => {
    const args = JSON.stringify({ phone: '+49 (30) 1234-5678', to_number: '0044 20 7946 0958', mobile: 5551234567 });
    expect(facts(args).counterparties).toEqual([
      cp('phone', '+493012345678'),
      cp('phone', '+442079460958'),
      cp('phone', '5551234567'),
    ]);
    expect(facts('{"to":"+1 415 555 0100"}').counterparties).toEqual([cp('phone', '+14155550100')]);
    expect(phoneNumber('call me')).toBeUndefined();
    expect(phoneNumber('123')).toBeUndefined();
  });

  it('the largest amount under amount-like keys, numeric strings included', () => {
    expect(
      facts('{"amount":"1,200.50","fee":3,"items":[{"unit_price":"$99"},{"total":2500}],"count":99999}').amount,
    ).toBe(2500);
    expect(facts('{"refundAmount":"1200 EUR","value":-5}').amount).toBe(1200);
    expect(facts('{"amount":"lots","limit":10}').amount).toBeUndefined();
    expect(facts('{"amount":1e400}').amount).toBeUndefined();
  });

  it('argument keys: top level, sorted, parameter-like, bounded', () => {
    expect(facts('{"to":"x","amount":1,"nested":{"inner":1},"bob@example.com":1}').argumentKeys).toEqual([
      'amount',
      'nested',
      'to',
    ]);
    const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${String(i).padStart(2, '0')}`, i]));
    many['x'.repeat(65)] = 1;
    const keys = facts(JSON.stringify(many)).argumentKeys ?? [];
    expect(keys).toHaveLength(MAX_ARGUMENT_KEYS);
    expect(keys[0]).toBe('k00');
    expect(keys.every((key) => key.length <= 64)).toBe(true);
    expect(facts('"just a string"').argumentKeys).toBeUndefined();
  });

  it('says whether a result was recorded, and leaves lists out when nothing was found', () => {
    expect(facts(undefined, undefined)).toEqual({ resultRecorded: false });
    expect(facts('{}', '')).toEqual({ resultRecorded: true, argumentKeys: [] });
  });

  it('deduplicates by kind and normalised value, in the order found', () => {
    const args = JSON.stringify({ to: ['BOB@example.com', 'bob@EXAMPLE.com'], cc: 'bob@example.com', user: 'bob' });
    expect(facts(args).counterparties).toEqual([
      cp('email', 'bob@example.com'),
      cp('domain', 'example.com'),
      cp('handle', 'bob'),
    ]);
  });
});

describe('bounds and hostile input', () => {
  it('keeps at most 32 counterparties per list', () => {
    const result = Array.from({ length: 200 }, (_, i) => `user${String(i)}@d${String(i)}.example`).join(' ');
    const found = facts(JSON.stringify({ to: result.split(' ') }), result);
    expect(found.counterparties).toHaveLength(MAX_COUNTERPARTIES);
    expect(found.resultCounterparties).toHaveLength(MAX_COUNTERPARTIES);
    expect(found.resultCounterparties?.[0]).toEqual(cp('email', 'user0@d0.example'));
  });

  it('reads a result only up to 64 KiB', () => {
    const padding = 'x '.repeat(MAX_RESULT_LENGTH / 2);
    expect(facts(undefined, `${padding}late@example.com`).resultCounterparties).toBeUndefined();
    expect(facts(undefined, `early@example.com ${padding}`).resultCounterparties).toHaveLength(2);
  });

  it('scans arguments over 16 KiB as text up to 16 KiB, and JSON past the walk (depth 4, 256 values) as text', () => {
    const long = JSON.stringify({ body: 'y'.repeat(20_000), to: 'late@example.com' });
    expect(facts(long).counterparties).toBeUndefined();
    expect(facts(JSON.stringify({ to: 'early@example.com', body: 'y'.repeat(20_000) })).counterparties).toHaveLength(2);
    const deep = JSON.stringify({ a: { b: { c: { d: { e: { account: '99887766', mail: 'deep@example.com' } } } } } });
    // Too deep for the walk: the address is still found in the text, the key-dependent account is not.
    expect(facts(deep).counterparties).toEqual([cp('email', 'deep@example.com'), cp('domain', 'example.com')]);
    const wide = JSON.stringify({ rows: Array.from({ length: 400 }, (_, i) => (i === 399 ? 'far@example.com' : i)) });
    expect(facts(wide).counterparties?.[0]).toEqual(cp('email', 'far@example.com'));
  });

  it('takes invalid JSON, lone surrogates and odd values without throwing', () => {
    for (const text of [
      '{"to": "bob@example.com"',
      '{"to":"\\ud800bob@example.com","user":"\\udfff"}',
      '\ud800@\udc00.example',
      '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
      '{"__proto__":{"account":"12345678"},"constructor":"x"}',
      'null',
      '{"amount":null,"to":null,"phone":true,"user":{},"account":[]}',
    ]) {
      expect(() => facts(text, text)).not.toThrow();
    }
    expect(facts('{"to": "bob@example.com"').counterparties).toEqual([
      cp('email', 'bob@example.com'),
      cp('domain', 'example.com'),
    ]);
    expect(facts('{"user":"\\ud800x"}').counterparties).toEqual([cp('handle', '\ud800x')]);
  });

  it('costs bounded time on 64 KiB of near-misses (no catastrophic backtracking)', () => {
    const hostile = [
      'a@'.repeat(32 * 1024),
      ':a@'.repeat(22 * 1024),
      'x.x@y.co '.repeat(7 * 1024),
      `${'a'.repeat(64 * 1024 - 20)}@${'b'.repeat(19)}`,
      `x@${'a-'.repeat(32 * 1024 - 2)}`,
      'https://'.repeat(8 * 1024),
      `://${'a'.repeat(64 * 1024 - 3)}`,
      'DE89 '.repeat(13 * 1024),
      'AB12'.repeat(16 * 1024),
      'DE89370400440532013001 '.repeat(2800),
      '@a'.repeat(32 * 1024),
      '#a.'.repeat(21 * 1024),
      `@${'a'.repeat(64 * 1024 - 1)}`,
      `${'a.'.repeat(32 * 1024)}@example.com`,
      '1,'.repeat(32 * 1024),
    ];
    for (const text of hostile) {
      expect(text.length).toBeGreaterThan(60 * 1024);
      const started = performance.now();
      facts(JSON.stringify({ to: text.slice(0, 16_000) }), text);
      const took = performance.now() - started;
      expect(took, `${text.slice(0, 12)}…: ${took.toFixed(1)} ms`).toBeLessThan(250);
    }
  });
});
