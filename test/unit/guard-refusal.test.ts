/**
 * The agent guard and loop refusals (kits/typescript/src/guard.ts, docs/loops.md): an `alert` event with
 * `refuseUntilMs` refuses the task's operations with TaskRefusedError until then (the task is not revoked); other
 * alerts and other tasks' refusals refuse nothing. Served by a local server-sent-events endpoint, no Tripline.
 */
import { createServer } from 'node:http';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskRefusedError } from '../../kits/typescript/src/errors.ts';
import { startGuard } from '../../kits/typescript/src/guard.ts';
import type { Guard } from '../../kits/typescript/src/guard.ts';
import { waitFor } from '../helpers/wait.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

const REASON =
  'loop.repeat: tool get_order was called 10 times with the same arguments in this task (its next calls are refused)';

async function streamServer(): Promise<{ url: string; paths: string[]; send: (event: string, data: unknown) => void }> {
  const clients: ServerResponse[] = [];
  const paths: string[] = [];
  const server = createServer((request, response) => {
    if (!request.url?.startsWith('/v1/stream')) {
      response.writeHead(404).end();
      return;
    }
    paths.push(request.url);
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
    paths,
    send: (event, data) => {
      for (const client of clients) client.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
  };
}

function refusal(guard: Guard, taskId: string): TaskRefusedError | undefined {
  try {
    guard.check(taskId, 'execute_tool get_order');
    return undefined;
  } catch (error) {
    if (error instanceof TaskRefusedError) return error;
    throw error;
  }
}

describe('the guard and loop refusals', () => {
  it('refuses a task while its refusal lasts, and nothing else', async () => {
    const server = await streamServer();
    const guard = startGuard({ apiUrl: server.url, agentId: 'looper', whileDisconnected: 'allow' });
    cleanups.push(() => guard.close());
    expect(await guard.ready()).toBe(true);
    expect(server.paths[0]).toContain('types=revocation,escalation,alert');
    guard.track('t-1');
    server.send('alert', { id: 'a1', taskId: 't-1', decision: 'alert', reasons: ['data.rows_per_task: read 9 rows'] });
    server.send('alert', { id: 'a2', taskId: 't-other', reasons: [REASON], refuseUntilMs: Date.now() + 60_000 });
    const untilMs = Date.now() + 500;
    server.send('alert', { id: 'a3', taskId: 't-1', reasons: [`${REASON} until later`], refuseUntilMs: untilMs });
    const error = await waitFor('the refusal', () => refusal(guard, 't-1'));
    expect(error).toMatchObject({
      code: 'TASK_REFUSED',
      taskId: 't-1',
      operation: 'execute_tool get_order',
      refusedUntilMs: untilMs,
      reason: `${REASON} until later`,
    });
    expect(guard.revocation('t-1')).toBeUndefined();
    expect(refusal(guard, 't-2')).toBeUndefined();
    // The refusal ends on its own.
    await waitFor('the refusal to end', () => refusal(guard, 't-1') === undefined, 5000, 50);
  });
});
