/**
 * Credentials that become known after a task's first spans (issue 14): a token issued later in embedded mode, or,
 * in distributed mode, credentials read from the store's credentials table (services/processor/stored-credentials.ts).
 * What the spans claimed so far is compared with them; a type or agent the spans never claimed is not.
 */
import { describe, expect, it } from 'vitest';
import type { AgentEvent, Alert } from '../../../schemas/events.ts';
import type { KillSwitchMessage } from '../../../services/killswitch/kill-switch.ts';
import { bindingStoredCredentials } from '../../../services/processor/stored-credentials.ts';
import { createMemoryStore } from '../../../services/store/memory-store.ts';
import type { TaskCredential } from '../../../services/store/store.ts';
import { taskCtx, toolCall } from '../detect/fixtures.ts';
import { TENANT, capturingLogger, rootOf, startProcessor } from './harness.ts';

const NOW = Date.now() - 600_000;

/** A task's tool calls, each span claiming `claims` (the declared type and agent, as classification puts them). */
function claimedCalls(taskId: string, claims: AgentEvent['claims'], calls = 2): AgentEvent[] {
  const ctx = taskCtx(claims?.taskType ?? 'unknown', taskId, claims?.agentId ?? 'svc-helpdesk', NOW);
  for (let i = 0; i < calls; i += 1) toolCall(ctx, 'get_ticket');
  return ctx.events.map((event) => (claims === undefined ? event : { ...event, claims: { taskId, ...claims } }));
}

const identityReasons = (messages: readonly KillSwitchMessage[], taskId: string): string[] =>
  messages
    .flatMap((message): Alert[] => (message.type === 'alert' ? [message.alert] : []))
    .filter((alert) => alert.taskId === taskId)
    .flatMap((alert) => alert.reasons)
    .filter((reason) => reason.startsWith('identity.'));

const credential = (taskId: string): TaskCredential => ({
  tenant: TENANT,
  taskId,
  taskType: 'summarize_ticket',
  agentId: 'agent-9',
  issuedMs: NOW,
});

describe('credentials known after the first spans', () => {
  it('compares what the spans claimed with a token issued later, and only what they claimed', async () => {
    const { processor, messages } = await startProcessor();
    await processor.handle({
      events: [
        ...claimedCalls('forged', { taskType: 'wire_transfer', agentId: 'agent-x' }),
        ...claimedCalls('honest', { taskType: 'summarize_ticket', agentId: 'agent-9' }),
        ...claimedCalls('unclaimed', undefined),
      ],
      boundaries: [],
    });
    for (const taskId of ['forged', 'honest', 'unclaimed'])
      await processor.registerTask({ ...credential(taskId), startMs: NOW });

    expect(identityReasons(messages, 'forged')).toEqual([
      'identity.credential_mismatch: its spans claim task type "wire_transfer"; its task token was issued for "summarize_ticket"',
      'identity.credential_mismatch: its spans claim agent "agent-x"; its task token was issued to "agent-9"',
    ]);
    expect(identityReasons(messages, 'honest')).toEqual([]);
    // Its type unknown and its agent a stand-in (service.name): nothing was claimed against the token.
    expect(identityReasons(messages, 'unclaimed')).toEqual([]);

    // From now on its spans are held to the token as they come; a finding alerts once.
    await processor.handle({
      events: claimedCalls('honest', { taskType: 'wire_transfer', agentId: 'agent-9' }, 1).map((event) => ({
        ...event,
        id: `${event.id}-later`,
      })),
      boundaries: [],
    });
    expect(identityReasons(messages, 'honest')).toEqual([
      'identity.credential_mismatch: its spans claim task type "wire_transfer"; its task token was issued for "summarize_ticket"',
    ]);
    await processor.registerTask({ ...credential('forged'), startMs: NOW });
    expect(identityReasons(messages, 'forged')).toHaveLength(2);
    await processor.stop();
  });

  it('reads credentials from the store once per task in distributed mode, again at its end if none were there', async () => {
    const store = createMemoryStore();
    const { processor, messages } = await startProcessor({ store });
    const asked: string[][] = [];
    const counting = {
      taskCredentials(tenant: string, taskIds: readonly string[]) {
        asked.push([...taskIds]);
        return store.taskCredentials(tenant, taskIds);
      },
    };
    const handle = bindingStoredCredentials(
      (batch) => processor.handle(batch),
      processor,
      counting,
      capturingLogger([]),
    );
    store.addCredentials([credential('early')]);
    const early = claimedCalls('early', { taskType: 'wire_transfer', agentId: 'agent-9' });
    const late = claimedCalls('late', { taskType: 'wire_transfer', agentId: 'agent-9' });
    await handle({ events: [...early, ...late], boundaries: [] });
    expect(asked).toEqual([['early', 'late']]);
    expect(identityReasons(messages, 'early')).toHaveLength(1);
    expect(identityReasons(messages, 'late')).toEqual([]);

    // The token of `late` is stored after its first spans: its end looks again; `early` is not asked for again.
    store.addCredentials([credential('late')]);
    const more = claimedCalls('early', { taskType: 'summarize_ticket', agentId: 'agent-9' }, 1).map((event) => ({
      ...event,
      id: `${event.id}-more`,
    }));
    await handle({ events: more, boundaries: [] });
    expect(asked).toHaveLength(1);
    await handle({ events: [], boundaries: [rootOf(late)] });
    expect(asked).toEqual([['early', 'late'], ['late']]);
    expect(identityReasons(messages, 'late')).toEqual([
      'identity.credential_mismatch: its spans claim task type "wire_transfer"; its task token was issued for "summarize_ticket"',
    ]);
    await processor.stop();
  });

  it('scores and keeps the batch when the credentials cannot be read', async () => {
    const { processor, store } = await startProcessor();
    const lines: { msg: string }[] = [];
    const failing = { taskCredentials: () => Promise.reject(new Error('the store is away')) };
    const handle = bindingStoredCredentials(
      (batch) => processor.handle(batch),
      processor,
      failing,
      capturingLogger(lines),
    );
    const events = claimedCalls('t-1', { taskType: 'summarize_ticket', agentId: 'agent-9' });
    await handle({ events, boundaries: [] });
    expect(store.allEvents().map((row) => row.event.id)).toEqual(events.map((event) => event.id));
    expect(lines.map((line) => line.msg)).toEqual([
      'reading task credentials failed; these tasks are compared with their credentials when next seen',
    ]);
    await processor.stop();
  });
});
