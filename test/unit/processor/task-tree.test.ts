/**
 * Task trees through the processor on the memory store: a task that declares a parent (`tripline.task.parent_id`)
 * is linked to it; a kill (a person's, the detector's) revokes the killed task's descendants through the kill
 * switch, never its parent or its parent's other children; a child's own kill raises its parent's score and alerts
 * on it, below the revoke level, also when the parent id is forged; a restore restores no child; a child first
 * heard of after its parent's kill is revoked as it appears; the tree's depth bounds a kill.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentEvent, Alert, Revocation } from '../../../schemas/events.ts';
import { MAX_TREE_DEPTH, TASK_TREE_ACTOR } from '../../../services/core/task-tree.ts';
import { createMemoryStore } from '../../../services/store/memory-store.ts';
import { benignTask, rng } from '../detect/fixtures.ts';
import { TENANT, exfiltration, revocationsOf, startProcessor, warmUp } from './harness.ts';
import type { Harness } from './harness.ts';

let now = Date.now() - 5 * 3_600_000;
const started: Harness[] = [];

async function start(...args: Parameters<typeof startProcessor>): Promise<Harness> {
  const h = await startProcessor(...args);
  started.push(h);
  return h;
}

afterEach(async () => {
  for (const h of started.splice(0)) await h.processor.stop();
});

/** The events as a kit sends them: each span declares its task and, when given, its parent. */
function declared(events: AgentEvent[], parentTaskId?: string): AgentEvent[] {
  for (const event of events)
    event.claims = {
      taskId: event.taskId,
      taskType: event.taskType,
      agentId: event.agentId,
      ...(parentTaskId === undefined ? {} : { parentTaskId }),
    };
  return events;
}

/** A benign task of `taskId`, optionally a child of `parent`, sent to the processor (not ended). */
async function runTask(h: Harness, taskId: string, parent?: string, agentId = 'agent-tree'): Promise<void> {
  now += 1_000;
  const task = benignTask('summarize_ticket', taskId, rng(taskId.length), { agentId, start: now });
  await h.processor.handle({ events: declared(task.events, parent), boundaries: [] });
}

/**
 * Lets the processor's follow-up steps (the tree's kills, queued after the kill that set them off) run and be
 * written: an empty batch is scored after them.
 */
async function settled(h: Harness): Promise<void> {
  await h.processor.handle({ events: [], boundaries: [] });
}

const revokedIds = (h: Harness): string[] =>
  revocationsOf(h.messages)
    .filter((revocation) => revocation.action === 'revoke')
    .map((revocation) => revocation.taskId);

const alertsOf = (h: Harness): Alert[] =>
  h.messages.flatMap((message) => (message.type === 'alert' ? [message.alert] : []));

const kill = (h: Harness, taskId: string, reason = 'a person saw it go wrong'): Promise<Revocation> =>
  h.processor.revoke({ tenant: TENANT, taskId, actor: 'alice@example.com', reason });

describe('task trees (memory store)', () => {
  it('links a task to the parent its spans declare, first claim kept, never itself', async () => {
    const h = await start();
    await runTask(h, 'orch-1');
    await runTask(h, 'sub-1', 'orch-1');
    await runTask(h, 'sub-1', 'someone-else');
    await runTask(h, 'self-1', 'self-1');
    expect((await h.store.getTask(TENANT, 'sub-1'))?.parentTaskId).toBe('orch-1');
    expect((await h.store.getTask(TENANT, 'self-1'))?.parentTaskId).toBeUndefined();
    expect((await h.store.getTask(TENANT, 'orch-1'))?.parentTaskId).toBeUndefined();
    expect((await h.store.childTasks(TENANT, ['orch-1'], 10)).map((task) => task.taskId)).toEqual(['sub-1']);
  });

  it("a person's kill revokes the descendants through the kill switch, not the parent nor its other children", async () => {
    const h = await start();
    await runTask(h, 'root');
    await runTask(h, 'orch', 'root');
    await runTask(h, 'sibling', 'root');
    await runTask(h, 'child-a', 'orch');
    await runTask(h, 'child-b', 'orch');
    await runTask(h, 'grandchild', 'child-a');
    const ancestor = await kill(h, 'orch', 'leaked a key');
    await settled(h);

    expect(revokedIds(h).sort()).toEqual(['child-a', 'child-b', 'grandchild', 'orch']);
    const tree = revocationsOf(h.messages).filter((revocation) => revocation.actor === TASK_TREE_ACTOR);
    expect(tree).toHaveLength(3);
    for (const revocation of tree) {
      expect(revocation).toMatchObject({
        action: 'revoke',
        source: 'manual',
        reason: 'its ancestor task orch was revoked by alice@example.com: leaked a key',
        escalation: { counts: false, basis: 'task_tree' },
      });
      expect(revocation.agentId).toBe('agent-tree');
      expect(revocation.parentTaskId).toBeUndefined();
    }
    for (const id of ['child-a', 'child-b', 'grandchild'])
      expect((await h.store.getTask(TENANT, id))?.status, id).toBe('revoked');
    for (const id of ['root', 'sibling']) expect((await h.store.getTask(TENANT, id))?.status, id).toBe('active');
    // Stored with the audit trail: each names the ancestor's kill.
    const stored = await h.store.listRevocations({ tenant: TENANT, taskId: 'grandchild', limit: 5 });
    expect(stored.items[0]?.reason).toContain('orch');
    expect(ancestor.parentTaskId).toBe('root');
    // The person's kill of a child raised its parent (an alert on root), the tree's own kills raised nothing.
    const onRoot = alertsOf(h).filter((alert) => alert.taskId === 'root');
    expect(onRoot).toHaveLength(1);
    expect(alertsOf(h).filter((alert) => alert.taskId === 'orch' || alert.taskId === 'child-a')).toEqual([]);
  });

  it("a restore of the parent restores none of its children; a child's own restore sticks", async () => {
    const h = await start();
    await runTask(h, 'p');
    await runTask(h, 'c1', 'p');
    await runTask(h, 'c2', 'p');
    await kill(h, 'p');
    await settled(h);
    await h.processor.restore({ tenant: TENANT, taskId: 'p', actor: 'bob', reason: 'false alarm' });
    await settled(h);
    expect((await h.store.getTask(TENANT, 'p'))?.status).toBe('active');
    expect((await h.store.getTask(TENANT, 'c1'))?.status).toBe('revoked');
    expect((await h.store.getTask(TENANT, 'c2'))?.status).toBe('revoked');
    await h.processor.restore({ tenant: TENANT, taskId: 'c1', actor: 'bob', reason: 'checked' });
    await runTask(h, 'c1', 'p');
    await settled(h);
    expect((await h.store.getTask(TENANT, 'c1'))?.status).toBe('active');
  });

  it('revokes a child first heard of after its parent was killed, as it appears', async () => {
    const h = await start();
    await runTask(h, 'late-parent');
    await kill(h, 'late-parent');
    await settled(h);
    await runTask(h, 'late-child', 'late-parent');
    await runTask(h, 'late-grandchild', 'late-child');
    await settled(h);
    expect((await h.store.getTask(TENANT, 'late-child'))?.status).toBe('revoked');
    expect((await h.store.getTask(TENANT, 'late-grandchild'))?.status).toBe('revoked');
    const [child] = revocationsOf(h.messages).filter((revocation) => revocation.taskId === 'late-child');
    expect(child).toMatchObject({ actor: TASK_TREE_ACTOR, reason: expect.stringContaining('late-parent') as string });
  });

  it('revokes descendants only the store knows (not held by this processor)', async () => {
    const store = createMemoryStore();
    const first = await start({ store });
    await runTask(first, 'stored-parent');
    await runTask(first, 'stored-child', 'stored-parent');
    await first.processor.stop();
    started.splice(started.indexOf(first), 1);
    // A fresh processor (another one in the distributed mode) that holds neither until asked.
    const second = await start({ store });
    await kill(second, 'stored-parent');
    await settled(second);
    expect((await store.getTask(TENANT, 'stored-child'))?.status).toBe('revoked');
    expect(revokedIds(second).sort()).toEqual(['stored-child', 'stored-parent']);
  });

  it(`stops ${String(MAX_TREE_DEPTH)} levels below the killed task`, async () => {
    const h = await start();
    const chain = Array.from({ length: MAX_TREE_DEPTH + 3 }, (_, index) => `level-${String(index)}`);
    for (const [index, id] of chain.entries()) await runTask(h, id, index === 0 ? undefined : chain[index - 1]);
    await kill(h, 'level-0');
    await settled(h);
    expect(revokedIds(h).sort()).toEqual(chain.slice(0, MAX_TREE_DEPTH + 1).sort());
    // Left to a person, and said so.
    expect(h.errors).toEqual([
      expect.objectContaining({
        msg: 'a killed task has descendants deeper than one kill reaches; they are left to a person',
        taskId: 'level-0',
      }),
    ]);
  });

  it("a child's detector kill raises its parent's score and alerts on it, below the revoke level", async () => {
    const h = await start();
    now += 60 * 60_000;
    await warmUp(h.processor, now);
    now += 60 * 60_000;
    await runTask(h, 'orch-d');
    await runTask(h, 'quiet-child', 'orch-d');
    await h.processor.handle({ events: declared(exfiltration('rogue-child', now), 'orch-d'), boundaries: [] });
    await settled(h);

    const rogue = revocationsOf(h.messages).find((revocation) => revocation.taskId === 'rogue-child');
    expect(rogue).toMatchObject({ source: 'detector', actor: 'tripline', parentTaskId: 'orch-d' });
    const parent = await h.store.getTask(TENANT, 'orch-d');
    expect(parent?.status).toBe('active');
    expect(parent?.decision).toBe('alert');
    expect(parent?.score).toBeGreaterThanOrEqual(50);
    expect(parent?.score).toBeLessThan(80);
    expect(parent?.reasons[0]).toContain(
      'its child task rogue-child (summarize_ticket, agent agent-rogue) was revoked',
    );
    const [alert] = alertsOf(h).filter((item) => item.taskId === 'orch-d');
    expect(alert).toMatchObject({ decision: 'alert', score: parent?.score });
    // Its sibling goes on: a child's kill reaches no other task.
    expect((await h.store.getTask(TENANT, 'quiet-child'))?.status).toBe('active');
    expect(revokedIds(h)).toEqual(['rogue-child']);
  });

  it('a forged parent id lets a rogue task raise an alert on the task it names, never kill it or its children', async () => {
    const h = await start();
    now += 60 * 60_000;
    await warmUp(h.processor, now);
    now += 60 * 60_000;
    await runTask(h, 'victim', undefined, 'agent-victim');
    await runTask(h, 'victim-child', 'victim', 'agent-victim');
    // Three rogue tasks of another agent each claim the victim as their parent and get themselves revoked.
    for (const id of ['forger-1', 'forger-2', 'forger-3']) {
      now += 60_000;
      await h.processor.handle({ events: declared(exfiltration(id, now, 'agent-forger'), 'victim'), boundaries: [] });
    }
    await settled(h);
    expect(revokedIds(h).sort()).toEqual(['forger-1', 'forger-2', 'forger-3']);
    const victim = await h.store.getTask(TENANT, 'victim');
    expect(victim?.status).toBe('active');
    expect(victim?.score).toBeLessThan(80);
    expect(victim?.reasons[0]).toContain('3 of its children revoked');
    expect((await h.store.getTask(TENANT, 'victim-child'))?.status).toBe('active');
    const onVictim = alertsOf(h).filter((alert) => alert.taskId === 'victim');
    expect(onVictim).toHaveLength(3);
    expect(onVictim.every((alert) => alert.decision === 'alert')).toBe(true);
    expect(onVictim.map((alert) => alert.reasons[0]?.slice(0, 28))).toEqual([
      'its child task forger-1 (sum',
      'its child task forger-2 (sum',
      'its child task forger-3 (sum',
    ]);
  });
});
