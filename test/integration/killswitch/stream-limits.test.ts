/**
 * `/v1/stream` holds a bounded number of connections: per tenant (beyond: 429 STREAM_TENANT_LIMIT) and in all
 * (beyond: 503 STREAM_FULL), both with Retry-After and the usual error body; a closed connection frees its place.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders } from '../../helpers/auth.ts';
import { waitFor } from '../../helpers/wait.ts';
import { startTripline } from './helpers.ts';
import type { TestTripline } from './helpers.ts';

let tripline: TestTripline;
let acmeViewer: string;
const open: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  tripline = await startTripline({ TRIPLINE_STREAM_MAX_CLIENTS: '3', TRIPLINE_STREAM_MAX_CLIENTS_PER_TENANT: '2' });
  const made = await fetch(`${tripline.api}/v1/admin/tokens`, {
    method: 'POST',
    headers: { ...adminHeaders, 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: 'acme', role: 'viewer', name: 'acme viewer' }),
  });
  expect(made.status).toBe(201);
  acmeViewer = ((await made.json()) as { token: string }).token;
});

afterAll(async () => {
  await Promise.all(open.splice(0).map((stream) => stream.close()));
  await tripline.stop();
});

/** Connects; on 200 reads until `ready` and keeps the connection open. */
async function connect(
  authorization: string,
): Promise<{ status: number; retryAfter: string | null; body: string; close(): Promise<void> }> {
  const abort = new AbortController();
  const response = await fetch(`${tripline.api}/v1/stream?types=revocation`, {
    headers: { authorization },
    signal: abort.signal,
  });
  const retryAfter = response.headers.get('retry-after');
  if (response.status !== 200)
    return { status: response.status, retryAfter, body: await response.text(), close: () => Promise.resolve() };
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes('event: ready')) {
    const chunk = await reader.read();
    if (chunk.done) break;
    text += decoder.decode(chunk.value, { stream: true });
  }
  const stream = {
    status: response.status,
    retryAfter,
    body: text,
    close: async () => {
      await reader.cancel().catch(() => undefined);
      abort.abort();
    },
  };
  open.push(stream);
  return stream;
}

describe('/v1/stream connection limits', () => {
  it('refuses past the tenant share (429) and past the process total (503), with Retry-After', async () => {
    const admin = adminHeaders.authorization;
    const first = await connect(admin);
    const second = await connect(admin);
    expect([first.status, second.status]).toEqual([200, 200]);

    const third = await connect(admin);
    expect(third.status).toBe(429);
    expect(third.retryAfter).toBe('5');
    expect(JSON.parse(third.body)).toMatchObject({ error: { code: 'STREAM_TENANT_LIMIT' } });

    // Another tenant still connects: one tenant's connections do not use up the others'.
    const acme = await connect(`Bearer ${acmeViewer}`);
    expect(acme.status).toBe(200);
    // Now the process holds its total.
    const acmeAgain = await connect(`Bearer ${acmeViewer}`);
    expect(acmeAgain.status).toBe(503);
    expect(acmeAgain.retryAfter).toBe('5');
    expect(JSON.parse(acmeAgain.body)).toMatchObject({ error: { code: 'STREAM_FULL' } });

    // A closed connection frees its place.
    await first.close();
    const again = await waitFor('a freed place', async () => {
      const attempt = await connect(admin);
      return attempt.status === 200 ? attempt : undefined;
    });
    expect(again.body).toContain('event: ready');
  });
});
