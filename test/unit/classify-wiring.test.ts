/**
 * The classification settings (TRIPLINE_COUNTERPARTY_KEY, TRIPLINE_STORE_TOOL_CONTENT) from the configuration to
 * both places spans are classified: the gateway (embedded mode, and OTLP/JSON in distributed mode) and the Kafka
 * processor's record decoding.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../services/app/config.ts';
import type { ClassifiedBatch } from '../../services/core/classify.ts';
import { DEFAULT_COUNTERPARTY_KEY } from '../../services/core/counterparties.ts';
import { createGateway } from '../../services/gateway/gateway.ts';
import { decodeSpanRecord } from '../../services/bus/kafka/span-record-decoding.ts';
import { TENANT_HEADER } from '../../services/bus/kafka/span-record-encoding.ts';
import { encodeTraceRequest } from '../../services/otlp/codec.ts';
import { TriplineError } from '../../services/shared/errors.ts';
import type { OtlpTraceRequest } from '../../schemas/otlp.ts';

const KEY = 'wiring-test-counterparty-key';
const ARGS = '{"to":"Payee@Vendor.example","amount":75}';

/** The keyed hash, computed here with node:crypto rather than the core's own SHA-256. */
const expectedKey = (secret: string, tenant: string, kind: string, value: string): string =>
  createHash('sha256').update(`${secret}\n${tenant}\n${kind}\n${value}`).digest('hex').slice(0, 16);

const request: OtlpTraceRequest = {
  resourceSpans: [
    {
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'billing-agent' } }] },
      scopeSpans: [
        {
          spans: [
            {
              traceId: '0af7651916cd43dd8448eb211c80319c',
              spanId: 'b7ad6b7169203331',
              parentSpanId: '00f067aa0ba902b7',
              name: 'execute_tool pay',
              kind: 1,
              startTimeUnixNano: '1795900000000000000',
              endTimeUnixNano: '1795900000100000000',
              attributes: [
                { key: 'gen_ai.operation.name', value: { stringValue: 'execute_tool' } },
                { key: 'gen_ai.tool.name', value: { stringValue: 'pay' } },
                { key: 'gen_ai.tool.call.arguments', value: { stringValue: ARGS } },
              ],
              events: [],
              links: [],
            },
          ],
        },
      ],
    },
  ],
};

describe('classification settings', () => {
  it('default to the public key and to not storing tool content; a short key is refused without showing it', () => {
    expect(loadConfig({}).classify).toEqual({ counterpartyKey: DEFAULT_COUNTERPARTY_KEY, storeToolContent: false });
    expect(loadConfig({ TRIPLINE_COUNTERPARTY_KEY: KEY, TRIPLINE_STORE_TOOL_CONTENT: 'true' }).classify).toEqual({
      counterpartyKey: KEY,
      storeToolContent: true,
    });
    let refused: unknown;
    try {
      loadConfig({ TRIPLINE_COUNTERPARTY_KEY: 'short-secret' });
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(TriplineError);
    expect((refused as TriplineError).code).toBe('CONFIG_INVALID');
    expect((refused as TriplineError).message).toContain('TRIPLINE_COUNTERPARTY_KEY');
    expect((refused as TriplineError).message).not.toContain('short-secret');
  });

  it('reach the gateway', async () => {
    const published: ClassifiedBatch[] = [];
    const publisher = {
      publish: (batch: ClassifiedBatch) => {
        published.push(batch);
        return Promise.resolve();
      },
      close: () => Promise.resolve(),
    };
    const gateway = createGateway(publisher, undefined, loadConfig({ TRIPLINE_COUNTERPARTY_KEY: KEY }).classify);
    await gateway.ingest(request, { tenant: 'acme' });
    const tool = published[0]?.events[0]?.tool;
    expect(tool?.counterparties?.[0]).toEqual({
      kind: 'email',
      key: expectedKey(KEY, 'acme', 'email', 'payee@vendor.example'),
    });
    expect(published[0]?.events[0]?.attributes['gen_ai.tool.call.arguments']).toBe(
      `[not stored: ${String(ARGS.length)} chars]`,
    );
  });

  it("reach the Kafka processor's decoding of span records", () => {
    const record = Buffer.from(encodeTraceRequest(request));
    const decoded = decodeSpanRecord(
      record,
      { [TENANT_HEADER]: 'globex' },
      { counterpartyKey: KEY, storeToolContent: true },
    );
    expect(decoded.ok).toBe(true);
    const event = decoded.ok ? decoded.events.events[0] : undefined;
    expect(event?.tool?.counterparties).toEqual([
      { kind: 'email', key: expectedKey(KEY, 'globex', 'email', 'payee@vendor.example') },
      { kind: 'domain', key: expectedKey(KEY, 'globex', 'domain', 'vendor.example') },
    ]);
    expect(event?.tool?.amount).toBe(75);
    expect(event?.attributes['gen_ai.tool.call.arguments']).toBe(ARGS);
    // Without options (older callers): the documented default key, content not stored.
    const plain = decodeSpanRecord(record, { [TENANT_HEADER]: 'globex' });
    const plainEvent = plain.ok ? plain.events.events[0] : undefined;
    expect(plainEvent?.tool?.counterparties?.[0]?.key).toBe(
      expectedKey(DEFAULT_COUNTERPARTY_KEY, 'globex', 'email', 'payee@vendor.example'),
    );
    expect(plainEvent?.attributes['gen_ai.tool.call.arguments']).toMatch(/^\[not stored: \d+ chars\]$/);
  });
});
