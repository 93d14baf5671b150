/**
 * The event rows' positional values (eventRowValues, what the store sends) against the keyed rows they replace
 * (eventToRow through compactRows): the same columns in the same order, the same values, the same line sent.
 */
import { describe, expect, it } from 'vitest';
import type { AgentEvent, Verdict } from '../../../schemas/events.ts';
import {
  EVENT_ROW_COLUMNS,
  eventRowValues,
  eventToRow,
  rowToEvent,
} from '../../../services/store/clickhouse/event-rows.ts';
import { compactRows } from '../../../services/store/clickhouse/values.ts';
import type { ScoredEvent } from '../../../services/store/store.ts';

const LONE = 'half \ud83d of a pair, \udc00 alone';
const ODD = `quote ' double " backslash \\ newline \n tab \t unicode ü 日本 🚀 ${LONE}`;

function base(id: string, overrides: Partial<AgentEvent> = {}): AgentEvent {
  return {
    id,
    tenant: 'acme',
    kind: 'tool_call',
    taskId: 'task-1',
    taskType: 'triage',
    agentId: 'agent-1',
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    parentSpanId: '',
    name: 'execute_tool search',
    startMs: 1_765_000_000_123.456,
    endMs: 1_765_000_000_999.001,
    error: false,
    attributes: {},
    ...overrides,
  };
}

const verdict: Verdict = {
  score: 12.5,
  decision: 'allow',
  regime: 'agent_baseline',
  contributions: [
    { feature: 'tool.unseen', score: 40, reason: `a tool never seen ${ODD}` },
    { feature: 'data.rows_per_task', score: 0.1, reason: 'fine' },
  ],
  shadow: false,
};

const EVENTS: ScoredEvent[] = [
  {
    event: base('plain'),
    verdict: { score: 0, decision: 'allow', regime: 'rules', contributions: [], shadow: true },
  },
  {
    event: base('tool', {
      error: true,
      errorType: ODD,
      attributes: { 'gen_ai.tool.name': 'search', [ODD]: ODD, n: 1.5, b: true, big: 12_345_678_901_234_567_000 },
      tool: {
        name: ODD,
        type: 'function',
        sideEffect: 'write',
        target: 'crm.example.com',
        callId: 'call_1',
        counterparties: [{ kind: 'email', key: 'k1' }],
        resultRecorded: true,
        amount: 12.75,
        argumentKeys: ['query', ODD],
        argumentsHash: '0123456789abcdef',
      },
    }),
    verdict: { ...verdict, hardRule: ODD },
  },
  { event: base('tool-bare', { tool: { name: 'bare' } }), verdict },
  {
    event: base('data', {
      kind: 'data_access',
      data: { resource: `crm.${ODD}`, system: 'postgresql', operation: 'SELECT', rows: 10, bytes: 2048, host: 'db' },
    }),
    verdict,
  },
  {
    event: base('privilege', {
      kind: 'privilege_change',
      privilege: { action: 'grant', scopesBefore: [LONE, 'a'], scopesAfter: [], resource: 'r', approved: false },
    }),
    verdict,
  },
];

describe('eventRowValues', () => {
  it("names eventToRow's columns in its order", () => {
    const first = EVENTS[0];
    if (first === undefined) throw new Error('no events');
    expect(EVENT_ROW_COLUMNS).toEqual(compactRows([eventToRow(first)]).columns);
  });

  it('holds what compactRows makes of eventToRow, and serialises to the same line', () => {
    for (const scored of EVENTS) {
      const { values } = compactRows([eventToRow(scored)]);
      expect(eventRowValues(scored)).toEqual(values[0]);
      expect(JSON.stringify(eventRowValues(scored))).toBe(JSON.stringify(values[0]));
    }
  });

  it('leaves the event as it was', () => {
    const scored = EVENTS[4];
    if (scored === undefined) throw new Error('no event');
    eventRowValues(scored);
    expect(scored.event.privilege?.scopesBefore[0]).toBe(LONE);
  });

  it("keeps the mark of a call's second record (another instrumentation's span) in tool_facts, read back as written", () => {
    const scored: ScoredEvent = {
      event: base('second', { tool: { name: 'search', callId: 'call_1', sameCallOf: 'first' } }),
      verdict,
    };
    const row = eventToRow(scored);
    expect(JSON.parse(row.tool_facts)).toEqual({ sameCallOf: 'first' });
    const back = rowToEvent({ ...row, start_us: 1_765_000_000_123_456, end_us: 1_765_000_000_999_001 });
    expect(back.event.tool).toEqual({ name: 'search', callId: 'call_1', sameCallOf: 'first' });
  });
});
