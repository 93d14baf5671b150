/**
 * The event stream's fields are safe whatever an agent claims: an agent id holding CR/LF reaches the `id:` line of
 * its escalation event, and must not end that line and start a forged event. Read with a parser that follows the
 * SSE specification (lines end at CR, LF or CRLF; a blank line dispatches), as a subscriber's client would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../../schemas/events.ts';
import { sseFieldValue } from '../../../services/killswitch/stream.ts';
import { adminHeaders } from '../../helpers/auth.ts';
import { readStreamUntil, startTripline } from './helpers.ts';
import type { TestTripline } from './helpers.ts';

let tripline: TestTripline;

beforeAll(async () => {
  tripline = await startTripline({
    TRIPLINE_ESCALATION_REVOCATIONS: '2',
    TRIPLINE_ESCALATION_WINDOW_MS: '60000',
    TRIPLINE_ESCALATION_BLOCK_MS: '60000',
  });
});

afterAll(async () => {
  await tripline.stop();
});

interface SseEvent {
  type: string;
  id: string;
  data: string;
}

/** The events an SSE client dispatches from `text` (https://html.spec.whatwg.org/multipage/server-sent-events.html). */
function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  let type = '';
  let id = '';
  let data: string[] = [];
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === '') {
      if (data.length > 0) events.push({ type: type === '' ? 'message' : type, id, data: data.join('\n') });
      type = '';
      data = [];
      continue;
    }
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id' && !value.includes('\u0000')) id = value;
  }
  return events;
}

let counter = 0;

/** An unapproved admin scope (a hard rule): the task is revoked, and counts toward escalating its agent. */
async function offend(agentId: string, taskId: string): Promise<void> {
  counter += 1;
  const now = Date.now();
  const event: AgentEvent = {
    id: `offence-${counter}`,
    tenant: 'default',
    kind: 'privilege_change',
    taskId,
    taskType: 'customer_refund',
    agentId,
    traceId: `trace-${counter}`,
    spanId: `span-${counter}`,
    parentSpanId: '',
    name: 'privilege elevate',
    startMs: now - 5,
    endMs: now,
    error: false,
    privilege: {
      action: 'elevate',
      scopesBefore: ['payments:read'],
      scopesAfter: ['payments:read', 'admin'],
      approved: false,
    },
    attributes: {},
  };
  await tripline.running.processor.handle({ events: [event], boundaries: [] });
}

describe('the event stream under hostile agent ids', () => {
  it('encodes control characters of field values, so the values stay one line and distinct', () => {
    expect(sseFieldValue('escalation-a-1')).toBe('escalation-a-1');
    expect(sseFieldValue('a\nb\rc\u0000d')).toBe('a%0Ab%0Dc%00d');
    expect(sseFieldValue('a%0Ab')).toBe('a%250Ab');
  });

  it("keeps an agent id's CR/LF inside its escalation event: no forged event reaches a subscriber", async () => {
    const agentId = 'evil\n\nevent: revocation\ndata: {"forged":true,"taskId":"victim"}\r\n\r\n:';
    const stream = await fetch(`${tripline.api}/v1/stream?types=escalation`, {
      headers: { accept: 'text/event-stream', ...adminHeaders },
    });
    expect(stream.status).toBe(200);
    const received = readStreamUntil(stream, '"untilMs"');

    await offend(agentId, 'evil-task-1');
    await offend(agentId, 'evil-task-2');

    const events = parseSse(await received);
    expect(events.map((event) => event.type)).toEqual(['ready', 'escalation']);
    const escalation = events[1];
    expect(JSON.parse(escalation?.data ?? '{}')).toMatchObject({
      agentId,
      taskIds: ['evil-task-1', 'evil-task-2'],
    });
    expect(escalation?.id).toMatch(/^escalation-evil%0A%0Aevent: revocation%0Adata: .*%0D%0A%0D%0A:-\d+$/);
  });
});
