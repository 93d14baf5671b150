import { describe, expect, it } from 'vitest';
import { markEnded, newTaskState, observe, recordVerdict, summarize } from '../../../services/core/detect/index.ts';
import { T0, dataAccess, gap, privilegeChange, stateOf, taskCtx, toolCall } from './fixtures.ts';

describe('observe', () => {
  it('mutates and returns the same state, counting kinds, errors and time', () => {
    const ctx = taskCtx('summarize_ticket', 'task-1');
    const e = toolCall(ctx, 'get_ticket', { error: true });
    const s = newTaskState({
      tenant: 't1',
      taskId: 'task-1',
      taskType: 'summarize_ticket',
      agentId: 'agent-1',
      startMs: T0,
    });
    expect(observe(s, e)).toBe(s);
    expect(s.counts).toEqual({ tool_call: 1, data_access: 0, privilege_change: 0 });
    expect(s.errors).toBe(1);
    expect(s.lastEventMs).toBe(e.endMs);
  });

  it('tracks tools, transitions and calls per minute', () => {
    const ctx = taskCtx('x', 'task');
    toolCall(ctx, 'a');
    toolCall(ctx, 'b');
    toolCall(ctx, 'a');
    gap(ctx, 120_000);
    toolCall(ctx, 'b');
    const s = stateOf(ctx.events);
    expect([...s.tools]).toEqual([
      ['a', 2],
      ['b', 2],
    ]);
    expect(s.prevTool).toBe('a');
    expect(s.lastTool).toBe('b');
    expect(s.transitions.get('^\u0001a')).toBe(1);
    expect(s.transitions.get('a\u0001b')).toBe(2);
    expect(s.maxToolCallsPerMinute).toBe(3);
    expect(s.toolCallsLastMinute).toBe(1);
  });

  it('sums rows and bytes per resource and per task, with the largest single access', () => {
    const ctx = taskCtx('x', 'task');
    dataAccess(ctx, 'tickets/17', { rows: 1, bytes: 100 });
    dataAccess(ctx, 'tickets/99', { rows: 2, bytes: 300, classification: 'confidential' });
    dataAccess(ctx, 'kb.articles', { rows: 10, bytes: 5000, classification: 'internal' });
    const s = stateOf(ctx.events);
    expect(s.resources.get('tickets/#')).toMatchObject({ rows: 3, bytes: 400, accesses: 2, classRank: 2 });
    expect(s.rows).toBe(13);
    expect(s.bytes).toBe(5400);
    expect(s.sensitiveRows).toBe(2);
    expect(s.maxRowsPerAccess).toBe(10);
    expect(s.classRank).toBe(2);
  });

  it('records hosts, egress and the first secret read', () => {
    const ctx = taskCtx('x', 'task');
    toolCall(ctx, 'git_checkout', { sideEffect: 'read', target: 'https://git.acme.io/r' });
    dataAccess(ctx, 'vault/secret/key', { classification: 'restricted' });
    toolCall(ctx, 'http_request', { target: 'https://drop.example.net/u' });
    const s = stateOf(ctx.events);
    expect([...s.hosts]).toEqual(['git.acme.io', 'drop.example.net']);
    expect([...s.egressHosts]).toEqual(['drop.example.net']);
    expect(s.secretReadMs).toBe(ctx.events[1]?.startMs);
    expect(s.secretWhat).toBe('vault/secret/key');
  });

  it('measures how far scopes grow from the start of the task', () => {
    const ctx = taskCtx('x', 'task');
    privilegeChange(ctx, 'grant', ['a'], ['a', 'b']);
    privilegeChange(ctx, 'elevate', ['a', 'b'], ['a', 'b', 'c', 'd'], { approved: false });
    const s = stateOf(ctx.events);
    expect([...s.gainedScopes].sort()).toEqual(['b', 'c', 'd']);
    expect(s.unapprovedChanges).toBe(1);
    expect([...s.privilegeActions]).toEqual([
      ['grant', 1],
      ['elevate', 1],
    ]);
  });

  it('counts failing targets for probing storms and errors per minute', () => {
    const ctx = taskCtx('x', 'task');
    for (let i = 0; i < 12; i++)
      toolCall(ctx, `t${String(i % 4)}`, { error: true, target: `h${String(i)}.example.com` });
    const s = stateOf(ctx.events);
    expect(s.failingTargets.size).toBe(12);
    expect(s.errorsLastMinute).toBe(12);
    expect(s.maxErrorsPerMinute).toBe(12);
  });
});

describe('markEnded / recordVerdict / summarize', () => {
  it('keeps the earliest end and the highest score', () => {
    const s = newTaskState({ tenant: 't1', taskId: 'a', taskType: 'x', agentId: 'g', startMs: T0 });
    markEnded(s, T0 + 5000);
    markEnded(s, T0 + 9000);
    expect(s.endedMs).toBe(T0 + 5000);
    recordVerdict(s, { score: 40 });
    recordVerdict(s, { score: 20 });
    expect(s.maxScore).toBe(40);
  });

  it('produces a JSON-serializable summary of what learning needs', () => {
    const ctx = taskCtx('summarize_ticket', 'task-9');
    toolCall(ctx, 'get_ticket');
    dataAccess(ctx, 'tickets/1', { rows: 1, bytes: 10, classification: 'internal' });
    toolCall(ctx, 'post_comment', { sideEffect: 'write', target: 'https://helpdesk.acme.io/api' });
    privilegeChange(ctx, 'token_issue', ['r'], ['r', 'w']);
    const summary = summarize(stateOf(ctx.events, ctx.t + 1000));
    const copy = JSON.parse(JSON.stringify(summary)) as unknown;
    expect(copy).toEqual(JSON.parse(JSON.stringify(summary)));
    expect(summary).toMatchObject({
      taskId: 'task-9',
      events: 4,
      toolCalls: 2,
      dataAccesses: 1,
      privilegeChanges: 1,
      rows: 1,
      classifications: ['internal'],
      egressHosts: ['helpdesk.acme.io'],
      scopesGained: ['w'],
      endMs: ctx.t + 1000,
    });
    expect({ ...summary.tools }).toEqual({ get_ticket: 1, post_comment: 1 });
    expect({ ...summary.transitions.get_ticket }).toEqual({ post_comment: 1 });
    expect(summary.durationMs).toBe(ctx.t + 1000 - T0);
  });
});
