/**
 * What recorded tool arguments and database statements say about their target (services/core/arguments.ts):
 * whole-URL values under target-like keys first, free text ignored, bounded work on hostile input.
 */
import { describe, expect, it } from 'vitest';
import { MAX_ARGUMENTS_LENGTH, collectionFromQuery, targetFromArguments } from '../../services/core/arguments.ts';

describe('targetFromArguments', () => {
  it('takes a URL under a target-like key before any other URL-valued argument', () => {
    expect(targetFromArguments('{"url":"https://exfil.attacker.example/upload","body":"customers.csv"}')).toBe(
      'https://exfil.attacker.example/upload',
    );
    expect(
      targetFromArguments('{"source":"https://docs.example.com/a","webhook_url":"https://hooks.example.net/x"}'),
    ).toBe('https://hooks.example.net/x');
    expect(targetFromArguments('{"request":{"endpoint":"wss://stream.example.org/feed"}}')).toBe(
      'wss://stream.example.org/feed',
    );
    expect(targetFromArguments('{"host":"Files.Example.COM","path":"/tmp/x"}')).toBe('files.example.com');
  });

  it('falls back to the first argument that is a whole URL, in objects and lists', () => {
    expect(targetFromArguments('{"pages":["not a url","https://crawl.example.io/p/1"]}')).toBe(
      'https://crawl.example.io/p/1',
    );
    expect(targetFromArguments('https://plain.example.com/x')).toBe('https://plain.example.com/x');
  });

  it('ignores URLs inside free text, bare values that are no URL, and what is not JSON', () => {
    expect(
      targetFromArguments('{"to":"bob@example.com","body":"see https://evil.example.net/steal for details"}'),
    ).toBeUndefined();
    expect(targetFromArguments('ord-7')).toBeUndefined();
    expect(targetFromArguments('{"order_id":"ord-7","amount":12.5}')).toBeUndefined();
    expect(targetFromArguments('{"url": "https://cut.example.com/x", "body": "aaa')).toBeUndefined();
    expect(targetFromArguments('{"host":"not a host name"}')).toBeUndefined();
    expect(targetFromArguments(undefined)).toBeUndefined();
  });

  it('bounds its work: long text, deep nesting and many values give up instead of walking them', () => {
    expect(
      targetFromArguments(`{"url":"https://big.example.com/x","pad":"${'a'.repeat(MAX_ARGUMENTS_LENGTH)}"}`),
    ).toBeUndefined();
    const deep = `${'{"a":'.repeat(8)}"https://deep.example.com/x"${'}'.repeat(8)}`;
    expect(targetFromArguments(deep)).toBeUndefined();
    const many = JSON.stringify({
      items: Array.from({ length: 300 }, (_, i) => `v${String(i)}`),
      url: 'https://late.example.com/x',
    });
    expect(targetFromArguments(many)).toBeUndefined();
  });
});

describe('collectionFromQuery', () => {
  it('names the first table of a statement, with its schema', () => {
    expect(collectionFromQuery('SELECT id, email FROM crm.customers WHERE id = ?')).toBe('crm.customers');
    expect(collectionFromQuery('insert into "orders" (id) values (1)')).toBe('orders');
    expect(collectionFromQuery('UPDATE `refunds` SET state = ?')).toBe('refunds');
    expect(collectionFromQuery('SELECT * FROM orders o JOIN customers c ON o.c = c.id')).toBe('orders');
  });

  it('gives nothing for statements without a table', () => {
    expect(collectionFromQuery('SELECT 1')).toBeUndefined();
    expect(collectionFromQuery('BEGIN')).toBeUndefined();
    expect(collectionFromQuery(undefined)).toBeUndefined();
  });
});
