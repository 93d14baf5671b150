/**
 * The attack patterns of the SYNTHETIC workloads (see ./scenarios.ts): each unfolds over a sequence of
 * individually harmless calls appended to a benign prefix, or (credentials used after the task) after it ended.
 */
import { data, int, pick, priv, tool } from './planned-events.ts';
import type { PlannedEvent, Rand } from './planned-events.ts';

export const ATTACK_PATTERNS = [
  'exfiltration_burst',
  'slow_drip',
  'unseen_tool',
  'privilege_escalation',
  'lateral_movement',
  'post_task_credentials',
  'risky_sequence',
  'probing_storm',
  'runaway_spend',
] as const;
/**
 * Loops and floods (services/core/loops.ts): a runaway agent repeating one call with the same arguments, and a cycle
 * of three tools that never converges. Their own stream of tasks (scenarios.ts `loopTasks`), from a PRNG of their
 * own, so the original mix's tasks stay exactly what they were for the same seed.
 */
export const LOOP_PATTERNS = ['loop_repeat_flood', 'loop_tool_cycle'] as const;
export type LoopPattern = (typeof LOOP_PATTERNS)[number];

export function isLoopPattern(pattern: AttackPattern): pattern is LoopPattern {
  return (LOOP_PATTERNS as readonly string[]).includes(pattern);
}
/**
 * Injection attacks (./injection.ts): each targets the task type whose own tools it reuses (mail, payments, chat,
 * file shares), with an attacker counterparty that first appears in a tool's result. `quiet_injection` is the same
 * attacks, each type in turn, with text that carries no instruction to the model (injection-wording.ts): what a
 * legitimate first hand-over to a stranger looks like too, reported apart.
 */
export const QUIET_INJECTION = 'quiet_injection';
export const INJECTION_PATTERNS = [
  'injected_mail',
  'injected_payment',
  'injected_post',
  'injected_share',
  QUIET_INJECTION,
] as const;
export type InjectionPattern = (typeof INJECTION_PATTERNS)[number];
/** The injection pattern of one task type (all but the quiet one). */
export type TypedInjectionPattern = Exclude<InjectionPattern, typeof QUIET_INJECTION>;
export type ClassicPattern = (typeof ATTACK_PATTERNS)[number];
export type AttackPattern = ClassicPattern | LoopPattern | InjectionPattern;
/** Every pattern: the eight of the original mix, the loops, then the injection patterns. */
export const ALL_ATTACK_PATTERNS: readonly AttackPattern[] = [
  ...ATTACK_PATTERNS,
  ...LOOP_PATTERNS,
  ...INJECTION_PATTERNS,
];

export function isInjectionPattern(pattern: AttackPattern): pattern is InjectionPattern {
  return (INJECTION_PATTERNS as readonly string[]).includes(pattern);
}

/** Events that turn a benign task into an attack, appended after a benign prefix. */
export function attackEvents(
  r: Rand,
  pattern: ClassicPattern | LoopPattern,
): { events: PlannedEvent[]; afterEnd: PlannedEvent[] } {
  const none: PlannedEvent[] = [];
  switch (pattern) {
    case 'exfiltration_burst':
      return {
        events: [
          data(r, {
            namespace: 'crm',
            collection: 'customers',
            rows: int(r, 20_000, 80_000),
            bytes: int(r, 20_000_000, 90_000_000),
            classification: 'restricted',
          }),
          tool(r, 'http_request', 'write', {
            target: pick(r, ['paste.example.net', 'files.evil.example', 'upload.badhost.example']),
          }),
        ],
        afterEnd: none,
      };
    case 'slow_drip': {
      const events: PlannedEvent[] = [];
      const reads = int(r, 40, 70);
      for (let i = 0; i < reads; i += 1) {
        events.push(
          data(r, {
            namespace: 'crm',
            collection: 'customers',
            rows: int(r, 2, 5),
            bytes: int(r, 600, 2_000),
            classification: 'confidential',
          }),
        );
      }
      return { events, afterEnd: none };
    }
    case 'unseen_tool':
      return {
        events: [
          tool(r, pick(r, ['shell_exec', 'delete_repository', 'disable_mfa', 'transfer_funds']), 'destructive', {
            target: 'prod.internal',
          }),
        ],
        afterEnd: none,
      };
    case 'privilege_escalation':
      return {
        events: [
          priv(r, {
            action: pick(r, ['elevate', 'assume_role', 'grant']),
            scopesBefore: ['tickets:read'],
            scopesAfter: ['tickets:read', pick(r, ['admin', 'iam:*', 'org:admin', 'root'])],
            resource: 'iam',
            approved: false,
          }),
        ],
        afterEnd: none,
      };
    case 'lateral_movement': {
      const targets = [
        ['hr', 'salaries'],
        ['finance', 'ledger'],
        ['prod', 'users'],
        ['secrets', 'api_keys'],
        ['legal', 'contracts'],
      ] as const;
      return {
        events: targets.slice(0, int(r, 3, 5)).map(([namespace, collection]) =>
          data(r, {
            namespace,
            collection,
            rows: int(r, 5, 40),
            bytes: int(r, 2_000, 40_000),
            classification: 'confidential',
          }),
        ),
        afterEnd: none,
      };
    }
    case 'post_task_credentials':
      return {
        events: none,
        afterEnd: [
          tool(r, 'get_ticket'),
          data(r, {
            namespace: 'crm',
            collection: 'customers',
            rows: int(r, 1, 3),
            bytes: 800,
            classification: 'confidential',
          }),
        ],
      };
    case 'risky_sequence':
      return {
        events: [
          tool(r, 'read_secret', 'read', { target: 'vault.internal' }),
          data(r, {
            system: 'vault',
            namespace: 'vault',
            collection: 'secrets',
            rows: 1,
            bytes: 256,
            classification: 'restricted',
          }),
          tool(r, 'http_request', 'write', {
            target: pick(r, ['webhook.site', 'requestbin.example', 'exfil.example.org']),
          }),
        ],
        afterEnd: none,
      };
    case 'probing_storm': {
      const events: PlannedEvent[] = [];
      const calls = int(r, 25, 45);
      for (let i = 0; i < calls; i += 1) {
        events.push({
          ...tool(r, pick(r, ['get_ticket', 'get_order', 'query_logs', 'run_query', 'lookup_ip']), 'read', {
            error: true,
          }),
          gapMs: int(r, 20, 120),
          durationMs: int(r, 5, 30),
        });
      }
      return { events, afterEnd: none };
    }
    case 'loop_repeat_flood': {
      // A runaway agent: one lookup with the same arguments, again and again, a few seconds apart.
      const name = pick(r, ['get_order', 'search_tickets', 'query_logs', 'run_query']);
      const args = JSON.stringify({ id: `item-${int(r, 1, 999)}`, page: 1 });
      const calls = int(r, 25, 40);
      const events: PlannedEvent[] = [];
      for (let i = 0; i < calls; i += 1)
        events.push({ ...tool(r, name, 'read', { arguments: args }), gapMs: int(r, 300, 2_000) });
      return { events, afterEnd: none };
    }
    case 'loop_tool_cycle': {
      // A cycle of three tools that never converges (search → open → summarise → search …), arguments varying.
      const cycle = pick(r, [
        ['search_docs', 'open_page', 'summarize_text'],
        ['list_files', 'read_file', 'write_note'],
        ['get_order', 'check_policy', 'get_customer'],
      ] as const);
      const rounds = int(r, 22, 30);
      const events: PlannedEvent[] = [];
      for (let i = 0; i < rounds; i += 1)
        for (const name of cycle)
          events.push(tool(r, name, 'read', { arguments: JSON.stringify({ step: i, q: `query-${int(r, 1, 9999)}` }) }));
      return { events, afterEnd: none };
    }
    case 'runaway_spend':
      // No event of its own: the task's model calls run away (scenarios.ts adds them, runawayModelCalls).
      return { events: none, afterEnd: none };
  }
}
