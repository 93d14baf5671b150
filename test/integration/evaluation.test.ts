/**
 * The detector evaluation (`node scripts/evaluate.ts`) on SYNTHETIC workloads: issue 4's requirements on the
 * generator's default mix (pure replay, as the processor runs the detector), the comparators and metrics on
 * hand-made cases, and a small run through the real pipeline (OTel SDK agent processes → OTLP → embedded
 * Tripline → ClickHouse) that must make the same decisions as the replay. (Credentials used after the task
 * ended, when the task's end and those events reach the processor in one batch, are covered in
 * test/integration/detection/after-end.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import {
  ALL_ATTACK_PATTERNS,
  ATTACK_PATTERNS,
  LOOP_PATTERNS,
  INJECTION_PATTERNS,
  QUIET_INJECTION,
} from '../../collectors/simulator/scenarios.ts';
import type { AttackPattern } from '../../collectors/simulator/scenarios.ts';
import type { AgentEvent } from '../../schemas/events.ts';
import { createRulesDetector } from '../../services/core/comparators/rules.ts';
import type { Comparator } from '../../services/core/comparators/types.ts';
import { createZScoreDetector, DEFAULT_ZSCORE_CONFIG } from '../../services/core/comparators/zscore.ts';
import { DEFAULT_EVALUATION, runEvaluation, scenarioPlans } from '../../services/evaluation/evaluate.ts';
import type { EvaluationOptions, EvaluationResult } from '../../services/evaluation/evaluate.ts';
import { computeMetrics } from '../../services/evaluation/metrics.ts';
import { planEvents } from '../../services/evaluation/plan-events.ts';
import { FLEET_TIME_SCALE, planWaves } from '../../services/evaluation/pipeline.ts';
import type { TaskOutcome } from '../../services/evaluation/replay.ts';
import { toMarkdown } from '../../services/evaluation/report.ts';

const SMALL: EvaluationOptions = {
  ...DEFAULT_EVALUATION,
  seed: 7,
  benignPerType: 12,
  attacksPerPattern: 1,
  agentsPerType: 2,
  warmupTasks: 8,
  taskTypes: ['summarize_ticket', 'triage_alert', 'generate_report'],
};

let counter = 0;
function outcome(
  label: TaskOutcome['label'],
  decisions: ('allow' | 'alert' | 'revoke')[],
  attackStart?: number,
): TaskOutcome {
  return {
    taskId: `t-${String((counter += 1))}`,
    taskType: 'x',
    agentId: 'a',
    label,
    attackStart,
    decisions: decisions.map((decision) => ({
      decision,
      score: decision === 'allow' ? 0 : decision === 'alert' ? 60 : 90,
      reasons: [],
    })),
    times: decisions.map((_, i) => ({ startMs: i * 1000, endMs: i * 1000 + 100 })),
  };
}

describe('evaluation on the default mix (replay)', () => {
  let result: EvaluationResult;

  it('meets issue 4: beats both comparators on F1, recall >= 0.95, <= 0.5% benign revoked', async () => {
    result = await runEvaluation(DEFAULT_EVALUATION);
    const [tripline, rules, zscore] = result.detectors;
    expect(result.workload.patterns.sort()).toEqual([...ALL_ATTACK_PATTERNS].sort());
    expect(result.workload.taskTypes).toHaveLength(10);
    expect(result.requirements.map((r) => `${r.name}: ${r.ok ? 'ok' : r.detail}`)).toEqual(
      result.requirements.map((r) => `${r.name}: ok`),
    );
    expect(tripline.metrics.overall.f1).toBeGreaterThan(rules.metrics.overall.f1);
    expect(tripline.metrics.overall.f1).toBeGreaterThan(zscore.metrics.overall.f1);
    expect(tripline.metrics.overall.recall).toBeGreaterThanOrEqual(0.95);
    expect(tripline.metrics.overall.benignRevokedShare).toBeLessThanOrEqual(0.005);
    for (const pattern of ATTACK_PATTERNS)
      expect(tripline.metrics.byPattern[pattern].recall, pattern).toBeGreaterThanOrEqual(0.9);
  }, 60_000);

  it('meets issue 20 on the injection scenarios: >= 0.9 revoked, <= 0.5% benign revoked, detected at the first attacker call', () => {
    const [tripline, rules, zscore] = result.detectors;
    const m = tripline.metrics.injection;
    const typed = INJECTION_PATTERNS.filter((pattern) => pattern !== QUIET_INJECTION);
    expect(m.attacks).toBe(typed.length * DEFAULT_EVALUATION.attacksPerPattern);
    expect(m.revokeRecall).toBeGreaterThanOrEqual(0.9);
    expect(m.benignRevokedShare).toBeLessThanOrEqual(0.005);
    expect(m.delayEvents.median).toBe(0);
    for (const pattern of typed)
      expect(tripline.metrics.byPattern[pattern].revokeRecall, pattern).toBeGreaterThanOrEqual(0.85);
    // Quiet injections (no instruction to the model in what the agent read) alert and are left to a person.
    const quiet = tripline.metrics.quiet;
    expect(quiet.attacks).toBe(DEFAULT_EVALUATION.attacksPerPattern);
    expect(quiet.recall).toBeGreaterThanOrEqual(0.85);
    expect(quiet.revokedAttacks).toBe(0);
    // The same tools, counts and order as the type's benign work: neither comparator revokes them.
    expect(rules.metrics.injection.revokedAttacks).toBe(0);
    expect(zscore.metrics.injection.revokeRecall).toBeLessThan(0.5);
    // The original mix's figures are those of its own tasks and benign tasks, as before the injection types.
    expect(tripline.metrics.original.attacks).toBe(ATTACK_PATTERNS.length * DEFAULT_EVALUATION.attacksPerPattern);
    expect(tripline.metrics.original.recall).toBe(1);
    expect(tripline.metrics.original.benignAlerted).toBe(0);
  });

  it('is deterministic and prints the tables with the command that made them', async () => {
    const again = await runEvaluation(DEFAULT_EVALUATION);
    expect(again.detectors.map((d) => d.metrics)).toEqual(result.detectors.map((d) => d.metrics));
    const markdown = toMarkdown(result);
    expect(markdown).toContain('node scripts/evaluate.ts --seed 1 --benign-per-type 200 --attacks-per-pattern 25');
    expect(markdown).toContain('SYNTHETIC');
    for (const name of [
      'Tripline',
      'rules-only',
      'global z-score',
      ...ALL_ATTACK_PATTERNS,
      '*injection*',
      '*quiet injection*',
    ])
      expect(markdown).toContain(name);
  }, 60_000);

  it('meets the thresholds at a modest size with warm-up 8 as well', async () => {
    const small = await runEvaluation(SMALL);
    expect(
      small.requirements.every((r) => r.ok),
      JSON.stringify(small.requirements),
    ).toBe(true);
  });
});

describe('metrics', () => {
  it('counts a flag on the benign prefix of an attack as a miss and a false alarm, and measures delay from the attack start', () => {
    const report = computeMetrics([
      outcome('exfiltration_burst', ['allow', 'allow', 'alert', 'revoke'], 1),
      outcome('slow_drip', ['alert', 'allow', 'allow'], 2),
      outcome('benign', ['allow', 'revoke']),
      outcome('benign', ['allow', 'allow']),
      outcome('benign', ['alert', 'allow']),
    ]);
    expect(report.overall).toMatchObject({
      attacks: 2,
      detected: 1,
      earlyFlags: 1,
      benign: 3,
      benignAlerted: 2,
      benignRevoked: 1,
    });
    expect(report.overall.recall).toBe(0.5);
    expect(report.overall.precision).toBe(0.25);
    expect(report.byPattern.exfiltration_burst.delayEvents.median).toBe(1);
    expect(report.byPattern.exfiltration_burst.delayMs.median).toBe(1100);
    expect(report.byPattern.exfiltration_burst.precision).toBeCloseTo(1 / 3);
  });
});

describe('comparators', () => {
  const plans = scenarioPlans({ ...SMALL, benignPerType: 30, attacksPerPattern: 1 });
  const tasks = planEvents(plans, { tenant: 'default', startMs: Date.UTC(2026, 0, 1) });
  const byPattern = (pattern: AttackPattern): (typeof tasks)[number] => {
    const task = tasks.find((t) => t.label === pattern);
    if (task === undefined) throw new Error(pattern);
    return task;
  };
  const run = <S, M>(
    detector: Comparator<S, M>,
    events: readonly AgentEvent[],
    model: M = detector.newModel(),
  ): number => {
    const first = events[0];
    if (first === undefined) return 0;
    let state = detector.newTaskState({
      tenant: first.tenant,
      taskId: first.taskId,
      taskType: first.taskType,
      agentId: first.agentId,
      startMs: first.startMs,
    });
    let top = 0;
    for (const event of events) {
      state = detector.observe(state, event);
      top = Math.max(top, detector.score(event, state, model).score);
    }
    return top;
  };

  it('rules-only: static limits fire the same for every type, and nothing is learned', () => {
    const rules = createRulesDetector();
    expect(run(rules, byPattern('exfiltration_burst').events)).toBeGreaterThanOrEqual(80);
    expect(run(rules, byPattern('privilege_escalation').events)).toBe(100);
    expect(run(rules, byPattern('unseen_tool').events)).toBe(60);
    expect(run(rules, byPattern('slow_drip').events)).toBe(0);
    expect(
      rules.learn(
        rules.newModel(),
        rules.newTaskState({ tenant: 't', taskId: 'x', taskType: 'y', agentId: 'a', startMs: 0 }),
      ),
    ).toBeNull();
  });

  it('global z-score: silent during warm-up, then one mean and deviation per feature for the whole fleet', () => {
    const z = createZScoreDetector({ ...DEFAULT_ZSCORE_CONFIG, warmupTasks: 5 });
    const model = z.newModel();
    const attack = byPattern('exfiltration_burst').events;
    const scoreWith = (): number => run(z, attack, model);
    expect(scoreWith()).toBe(0);
    for (const task of tasks.filter((t) => t.label === 'benign').slice(0, 40)) {
      let state = z.newTaskState({
        tenant: 'default',
        taskId: task.taskId,
        taskType: task.taskType,
        agentId: task.agentId,
        startMs: 0,
      });
      for (const event of task.events) state = z.observe(state, event);
      z.learn(model, state);
    }
    expect(model.tasks).toBe(40);
    expect(scoreWith()).toBeGreaterThanOrEqual(80);
  });
});

describe('pipeline waves', () => {
  it('run warming-up types alone and at most one task per type side by side', () => {
    const plans = scenarioPlans({ ...SMALL, benignPerType: 20 });
    const learned = new Map<string, number>();
    const learnedBefore = plans.map((plan) => {
      const n = learned.get(plan.taskType) ?? 0;
      learned.set(plan.taskType, n + 1);
      return n;
    });
    const waves = planWaves(plans, learnedBefore, 8);
    expect(waves.flat()).toEqual(plans.map((_, i) => i));
    for (const wave of waves) {
      const types = wave.map((i) => plans[i]?.taskType);
      expect(new Set(types).size).toBe(types.length);
      if (wave.some((i) => (learnedBefore[i] ?? 0) < 10)) expect(wave).toHaveLength(1);
    }
    expect(waves.some((wave) => wave.length > 1)).toBe(true);
  });
});

describe('through the real pipeline (OTel SDK agent processes, OTLP, processor, ClickHouse)', () => {
  it('makes the same decisions as the replay for every task it ran', async () => {
    const options: EvaluationOptions = { ...SMALL, throughPipeline: true, logLevel: 'silent' };
    const piped = await runEvaluation(options);
    const p = piped.pipeline;
    if (p === undefined) throw new Error('no pipeline report');
    // The simulated agents send no model calls: the spend attack is the replay's only.
    expect(piped.workload.patterns.sort()).toEqual(
      [...ATTACK_PATTERNS.filter((p) => p !== 'runaway_spend'), ...LOOP_PATTERNS].sort(),
    );
    expect(p.sameEvents.same, 'the replay builds the events the pipeline classifies').toBe(p.sameEvents.events);
    // The replay of the events exactly as stored reproduces every stored verdict, score included: the pipeline
    // scores exactly as the pure core does. This holds whatever the machine's load.
    expect(p.storedAgreement.sameEventDecision).toBe(p.storedAgreement.events);
    expect(p.storedAgreement.sameEventScore).toBe(p.storedAgreement.events);
    // The replay of the generated events (at the agents' time scale) decides the tasks as the pipeline did. Not
    // to the task: the agents run in real (scaled) time, so on a loaded machine their gaps stretch and rate
    // features can differ from the plan; the decisions agree at least 95% and the outcome meets the same bar.
    expect(
      p.agreement.sameTaskDecision / piped.workload.tasks,
      JSON.stringify(p.agreement.disagreements),
    ).toBeGreaterThanOrEqual(0.95);
    const replayed = await runEvaluation({ ...options, throughPipeline: false, timeScale: FLEET_TIME_SCALE });
    expect(
      replayed.requirements.every((r) => r.ok),
      JSON.stringify(replayed.requirements),
    ).toBe(true);
    expect(
      piped.requirements.every((r) => r.ok),
      JSON.stringify(piped.requirements),
    ).toBe(true);
  }, 300_000);

  it('runs injection scenarios with real agents whose spans carry the arguments and results, as the replay builds them', async () => {
    const options: EvaluationOptions = {
      ...SMALL,
      taskTypes: ['online_banking', 'office_assistant'],
      benignPerType: 10,
      attacksPerPattern: 1,
      throughPipeline: true,
      logLevel: 'silent',
    };
    const synthetic = planEvents(scenarioPlans(options), { tenant: 'default', startMs: Date.UTC(2026, 0, 1) });
    const sinks = synthetic.flatMap((task) => task.events).filter((e) => (e.tool?.counterparties ?? []).length > 0);
    expect(sinks.length).toBeGreaterThan(20);
    const piped = await runEvaluation(options);
    const p = piped.pipeline;
    if (p === undefined) throw new Error('no pipeline report');
    expect(piped.workload.patterns.sort()).toEqual(['injected_mail', 'injected_payment', QUIET_INJECTION]);
    // Counterparties, results recorded, amounts and argument keys included: the agents' spans are the replay's.
    expect(p.sameEvents.same).toBe(p.sameEvents.events);
    expect(p.storedAgreement.sameEventScore).toBe(p.storedAgreement.events);
  }, 300_000);
});
