/**
 * The generator's injection scenarios (collectors/simulator/injection*.ts): seeded and deterministic, the original
 * mix unchanged by them, attacks that reuse the type's own tools with an attacker counterparty first seen in a tool
 * result, and spans from which the real classifier extracts that flow.
 */
import { describe, expect, it } from 'vitest';
import {
  ATTACK_PATTERNS,
  LOOP_PATTERNS,
  INJECTION_PATTERNS,
  INJECTION_TASK_TYPES,
  QUIET_INJECTION,
  TASK_TYPES,
  generateScenario,
} from '../../../collectors/simulator/scenarios.ts';
import type { PlannedEvent, TaskPlan } from '../../../collectors/simulator/scenarios.ts';
import { instructionCues } from '../../../services/core/instruction-cues.ts';
import { planEvents } from '../../../services/evaluation/plan-events.ts';

const ALL = [...TASK_TYPES, ...INJECTION_TASK_TYPES].map((type) => type.name);
const options = { seed: 11, benignPerType: 30, attacksPerPattern: 5, agentsPerType: 3 };

function calls(plan: TaskPlan): Extract<PlannedEvent, { kind: 'tool_call' }>[] {
  return plan.events.filter((e): e is Extract<PlannedEvent, { kind: 'tool_call' }> => e.kind === 'tool_call');
}

/** Strings in a call's arguments (JSON). */
function argumentValues(json: string | undefined): string[] {
  const out: string[] = [];
  const visit = (v: unknown): void => {
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) v.forEach(visit);
    else if (typeof v === 'object' && v !== null) Object.values(v).forEach(visit);
  };
  if (json !== undefined) visit(JSON.parse(json));
  return out;
}

/** ISO 13616: the IBAN, rearranged and its letters as numbers, is 1 mod 97. */
function ibanValid(iban: string): boolean {
  const moved = iban.slice(4) + iban.slice(0, 4);
  let rest = 0;
  for (const ch of moved) {
    const digits = /[A-Z]/.test(ch) ? String(ch.charCodeAt(0) - 55) : ch;
    for (const d of digits) rest = (rest * 10 + Number(d)) % 97;
  }
  return rest === 1;
}

describe('injection scenarios', () => {
  const plans = generateScenario({ ...options, taskTypes: ALL }).tasks;
  const injection = plans.filter((plan) => plan.taskId.includes('-i'));

  it('are deterministic for a seed and differ between seeds', () => {
    expect(generateScenario({ ...options, taskTypes: ALL }).tasks).toEqual(plans);
    expect(JSON.stringify(generateScenario({ ...options, seed: 12, taskTypes: ALL }).tasks)).not.toBe(
      JSON.stringify(plans),
    );
  });

  it('leave the original mix exactly as it was for the same seed, and are only made when asked for', () => {
    const original = generateScenario(options).tasks;
    expect(plans.filter((plan) => !plan.taskId.includes('-i'))).toEqual(original);
    expect(original.every((plan) => TASK_TYPES.some((type) => type.name === plan.taskType))).toBe(true);
    expect(new Set(original.map((plan) => plan.label))).toEqual(
      new Set(['benign', ...ATTACK_PATTERNS, ...LOOP_PATTERNS]),
    );
  });

  it('follow the warm-up protocol: benign rounds first, then attacks mixed with one benign task per type', () => {
    const types = INJECTION_TASK_TYPES.length;
    // Per evaluation round: one benign task and one attack per type, and one quiet injection.
    expect(injection).toHaveLength(types * options.benignPerType + options.attacksPerPattern * (types * 2 + 1));
    expect(injection.slice(0, types * options.benignPerType).every((plan) => plan.label === 'benign')).toBe(true);
    for (const type of INJECTION_TASK_TYPES) {
      const attacks = injection.filter((plan) => plan.label === type.pattern);
      expect(attacks).toHaveLength(options.attacksPerPattern);
      expect(attacks.every((plan) => plan.taskType === type.name)).toBe(true);
    }
    expect(new Set(injection.map((plan) => plan.label))).toEqual(new Set(['benign', ...INJECTION_PATTERNS]));
    const quiet = injection.filter((plan) => plan.label === QUIET_INJECTION);
    expect(quiet).toHaveLength(options.attacksPerPattern);
    expect(new Set(quiet.map((plan) => plan.taskType))).toEqual(new Set(INJECTION_TASK_TYPES.map((type) => type.name)));
  });

  it('word every typed injection as an instruction to the model, and no quiet one', () => {
    for (const attack of injection.filter((plan) => plan.label !== 'benign')) {
      const read = calls({ ...attack, events: attack.events.slice(0, attack.attackStartIndex) });
      const cues = read.flatMap((call) => instructionCues(call.result ?? ''));
      if (attack.label === QUIET_INJECTION) expect(cues, attack.taskId).toEqual([]);
      else expect(cues.length, attack.taskId).toBeGreaterThan(0);
    }
  });

  it('attack with the type’s own tools, the attacker first named in a result and then receiving at attackStartIndex', () => {
    for (const attack of injection.filter((plan) => plan.label !== 'benign')) {
      const start = attack.attackStartIndex ?? -1;
      const sink = attack.events[start];
      if (sink?.kind !== 'tool_call') throw new Error(`${attack.taskId}: no call at ${String(start)}`);
      expect(sink.sideEffect).toBe('write');
      const before = calls({ ...attack, events: attack.events.slice(0, start) });
      const squeeze = (text: string | undefined): string => (text ?? '').replace(/\s/g, '');
      // Addresses, handles and IBANs (results print IBANs in groups of four).
      const fromResults = argumentValues(sink.arguments).filter(
        (value) =>
          /@|^[A-Z]{2}\d{2}[A-Z0-9]{10,}$/.test(value) &&
          before.some((call) => squeeze(call.result).includes(value)) &&
          !before.some((call) => argumentValues(call.arguments).includes(value)),
      );
      expect(fromResults.length, attack.taskId).toBeGreaterThan(0);
      const names = calls(attack).map((call) => call.tool);
      const benignNames = new Set(
        injection
          .filter((plan) => plan.taskType === attack.taskType && plan.label === 'benign')
          .flatMap((p) => calls(p).map((c) => c.tool)),
      );
      expect(
        names.every((name) => benignNames.has(name)),
        attack.taskId,
      ).toBe(true);
    }
  });

  it('record arguments as JSON and results as text, with well-formed IBANs', () => {
    let ibans = 0;
    for (const plan of injection)
      for (const call of calls(plan)) {
        expect(() => JSON.parse(call.arguments ?? 'x') as unknown).not.toThrow();
        for (const value of argumentValues(call.arguments))
          if (/^[A-Z]{2}\d{2}[A-Z0-9]{10,30}$/.test(value)) {
            ibans++;
            expect(ibanValid(value), value).toBe(true);
          }
      }
    expect(ibans).toBeGreaterThan(20);
  });

  it('become spans from which the classifier extracts the flow: the sink’s counterparty is in an earlier result', () => {
    const attacks = injection.filter((plan) => plan.label !== 'benign');
    const tasks = planEvents(attacks, { tenant: 'default', startMs: Date.UTC(2026, 0, 1) });
    tasks.forEach((task, i) => {
      const start = attacks[i]?.attackStartIndex ?? -1;
      const sink = task.events[start]?.tool;
      const earlier = new Set(
        task.events.slice(0, start).flatMap((e) => (e.tool?.resultCounterparties ?? []).map((c) => c.key)),
      );
      expect(sink?.resultRecorded, task.taskId).toBe(true);
      expect(
        (sink?.counterparties ?? []).some((c) => earlier.has(c.key)),
        `${task.taskId}: ${JSON.stringify(sink)}`,
      ).toBe(true);
    });
  });
});
