/**
 * The agent guard and scoped escalations (kits/typescript/src/guard.ts): an escalation that names an end user
 * refuses only the tasks tracked for that end user; one without a scope (the whole agent, or an older Tripline's)
 * refuses every task of the agent. Served by a local server-sent-events endpoint, no Tripline.
 */
import { createServer } from 'node:http';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskRevokedError } from '../../kits/typescript/src/errors.ts';
import { startGuard } from '../../kits/typescript/src/guard.ts';
import type { Guard } from '../../kits/typescript/src/guard.ts';
import { waitFor } from '../helpers/wait.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

async function streamServer(): Promise<{ url: string; send: (event: string, data: unknown) => void }> {
  const clients: ServerResponse[] = [];
  const server = createServer((request, response) => {
    if (!request.url?.startsWith('/v1/stream')) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    response.write('event: ready\ndata: {}\n\n');
    clients.push(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    for (const client of clients) client.destroy();
    server.close();
  });
  return {
    url: `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`,
    send: (event, data) => {
      for (const client of clients) client.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
  };
}

function refused(guard: Guard, taskId: string): boolean {
  try {
    guard.check(taskId, 'tool_call');
    return false;
  } catch (error) {
    if (error instanceof TaskRevokedError) return true;
    throw error;
  }
}

describe('the guard and scoped escalations', () => {
  it("refuses only the escalated end user's tasks, and every task once the whole agent is escalated", async () => {
    const server = await streamServer();
    const guard = startGuard({ apiUrl: server.url, agentId: 'shared', whileDisconnected: 'allow' });
    cleanups.push(() => guard.close());
    expect(await guard.ready()).toBe(true);
    guard.track('t-u1', { endUser: 'u1', conversation: 'c1' });
    guard.track('t-u2', { endUser: 'u2' });
    guard.track('t-none');

    const untilMs = Date.now() + 60_000;
    server.send('escalation', { agentId: 'shared', taskIds: ['a', 'b'], untilMs, scope: { endUser: 'u1' } });
    await waitFor('the scoped escalation to reach the guard', () => refused(guard, 't-u1'));
    expect(refused(guard, 't-u2')).toBe(false);
    expect(refused(guard, 't-none')).toBe(false);
    expect(() => guard.check('t-u1', 'tool_call')).toThrow(/escalated for end user u1/);

    // An escalation without a scope is the whole agent (as an older Tripline sends it).
    server.send('escalation', { agentId: 'shared', taskIds: ['c', 'd'], untilMs });
    await waitFor('the whole-agent escalation to reach the guard', () => refused(guard, 't-none'));
    expect(refused(guard, 't-u2')).toBe(true);
  });
});
