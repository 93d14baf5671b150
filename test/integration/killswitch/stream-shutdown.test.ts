/**
 * `/v1/stream` at shutdown: stopping the stream hub (what the API's close does first) ends the open streams, and a
 * subscriber that arrives afterwards (its request was on its way while the server began closing) is refused with
 * 503 SHUTTING_DOWN and Retry-After instead of being attached to a hub that no longer ends anything, which held the
 * server's close open forever. Tripline then stops.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentHeaders } from '../../helpers/auth.ts';
import { startTripline } from './helpers.ts';
import type { TestTripline } from './helpers.ts';
import { streamUntilReady } from '../../helpers/event-stream.ts';

let tripline: TestTripline;
let stopped = false;

beforeAll(async () => {
  tripline = await startTripline();
});

afterAll(async () => {
  if (!stopped) await tripline.stop();
});

describe('the event stream when Tripline stops', () => {
  it('ends open streams, refuses new subscribers with 503 SHUTTING_DOWN, and lets Tripline stop', async () => {
    const response = await fetch(`${tripline.api}/v1/stream?agent_id=stopping-agent`, { headers: agentHeaders });
    expect(response.status).toBe(200);
    const { ended } = await streamUntilReady(response);

    tripline.running.enforcement.stream.stop();

    await ended;
    const late = await fetch(`${tripline.api}/v1/stream?agent_id=stopping-agent`, { headers: agentHeaders });
    expect(late.status).toBe(503);
    expect(late.headers.get('retry-after')).toBe('5');
    expect(((await late.json()) as { error: { code: string } }).error.code).toBe('SHUTTING_DOWN');
    expect(tripline.running.enforcement.stream.clients()).toBe(0);

    stopped = true;
    await tripline.stop();
  });
});
