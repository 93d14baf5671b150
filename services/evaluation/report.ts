/** The evaluation as markdown: a summary table, one table per detector by attack pattern, the requirements. */
import { ALL_ATTACK_PATTERNS } from '../../collectors/simulator/scenarios.ts';
import { escalationLines } from './escalation-replay.ts';
import type { EvaluationResult } from './evaluate.ts';
import type { Metrics } from './metrics.ts';
import { LOOP_FEATURES } from '../core/loops.ts';
import type { LoopFeature } from '../core/loops.ts';
import type { TaskOutcome } from './replay.ts';

const share = (x: number): string => `${(x * 100).toFixed(2)}%`;
const num = (x: number | null): string => (x === null ? '–' : String(Math.round(x)));
const ms = (x: number | null): string =>
  x === null ? '–' : x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${String(Math.round(x))} ms`;

function row(name: string, m: Metrics): string {
  return `| ${name} | ${m.detected}/${m.attacks} | ${m.recall.toFixed(3)} | ${m.precision.toFixed(3)} | ${m.f1.toFixed(3)} | ${m.revokedAttacks}/${m.attacks} | ${share(m.benignAlertedShare)} (${m.benignAlerted}) | ${share(m.benignRevokedShare)} (${m.benignRevoked}) | ${num(m.delayEvents.median)} / ${num(m.delayEvents.p90)} | ${ms(m.delayMs.median)} / ${ms(m.delayMs.p90)} |`;
}

const HEADER = [
  '| | detected | recall | precision | F1 | revoked | benign alerted | benign revoked | delay events (median / p90) | delay (median / p90) |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
];

export function commandLine(result: EvaluationResult): string {
  const o = result.options;
  const parts = [
    'node scripts/evaluate.ts',
    `--seed ${o.seed}`,
    `--benign-per-type ${o.benignPerType}`,
    `--attacks-per-pattern ${o.attacksPerPattern}`,
  ];
  if (o.agentsPerType !== 3) parts.push(`--agents-per-type ${o.agentsPerType}`);
  if (o.warmupTasks !== 20) parts.push(`--warmup ${o.warmupTasks}`);
  if (o.taskTypes !== undefined) parts.push(`--task-types ${o.taskTypes.join(',')}`);
  if (o.patterns !== undefined) parts.push(`--patterns ${o.patterns.join(',')}`);
  if (o.timeScale !== 1 && !o.throughPipeline) parts.push(`--time-scale ${String(o.timeScale)}`);
  if (o.throughPipeline) parts.push('--through-pipeline');
  return parts.join(' ');
}

export function toMarkdown(result: EvaluationResult): string {
  const w = result.workload;
  const lines: string[] = [];
  lines.push(`Command: \`${commandLine(result)}\``);
  lines.push('');
  lines.push(
    `SYNTHETIC workload from collectors/simulator/scenarios.ts (seed ${result.options.seed}): ${w.tasks} tasks (${w.benign} benign, ${w.attacks} attacks), ${w.events} events, task types ${w.taskTypes.join(', ')}; warm-up ${result.options.warmupTasks} tasks per type; thresholds alert ${result.options.alertThreshold}, revoke ${result.options.revokeThreshold}; ${result.mode === 'pipeline' ? 'Tripline through the real pipeline (OTel SDK agents → OTLP → processor → ClickHouse, agents in real time scaled 1/100), comparators on the stored events' : `replayed through the detector core as the processor runs it${result.options.timeScale === 1 ? '' : `, times scaled by ${String(result.options.timeScale)}`}`}.`,
  );
  lines.push('');
  lines.push('| detector | recall | precision | F1 | benign alerted | benign revoked | median delay (events / ms) |');
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const d of result.detectors) {
    const m = d.metrics.overall;
    lines.push(
      `| ${d.name} | ${m.recall.toFixed(3)} | ${m.precision.toFixed(3)} | ${m.f1.toFixed(3)} | ${share(m.benignAlertedShare)} | ${share(m.benignRevokedShare)} | ${num(m.delayEvents.median)} / ${ms(m.delayMs.median)} |`,
    );
  }
  for (const d of result.detectors) {
    lines.push('');
    lines.push(`**${d.name}** — ${d.description}`);
    lines.push('');
    lines.push(...HEADER);
    for (const pattern of ALL_ATTACK_PATTERNS) {
      const m = d.metrics.byPattern[pattern];
      if (m.attacks > 0) lines.push(row(pattern, m));
    }
    if (d.metrics.loops.attacks > 0 && d.metrics.original.attacks > 0)
      lines.push(row("*loops* (the original mix's benign tasks)", d.metrics.loops));
    if (d.metrics.injection.attacks > 0 && d.metrics.original.attacks > 0) {
      lines.push(row('*original mix* (its benign tasks)', d.metrics.original));
      lines.push(row('*injection* (its benign tasks)', d.metrics.injection));
      if (d.metrics.quiet.attacks > 0) lines.push(row('*quiet injection* (same benign tasks)', d.metrics.quiet));
    }
    lines.push(row('**overall**', d.metrics.overall));
  }
  lines.push(...spendLines(result));
  if (result.pipeline !== undefined) {
    const p = result.pipeline;
    const a = p.agreement;
    const s = p.storedAgreement;
    lines.push('');
    lines.push(
      `Pipeline: ${String(p.waves)} waves of agents in ${(p.wallMs / 1000).toFixed(1)} s. Against the replay of the generated events: same task decision for ${a.sameTaskDecision}/${a.tasks} tasks, same event decision for ${a.sameEventDecision}/${a.events} events. Against the replay of the events as stored: ${s.sameTaskDecision}/${s.tasks} tasks, ${s.sameEventDecision}/${s.events} event decisions, ${s.sameEventScore}/${s.events} identical scores. Generated events equal to the pipeline's classified events (all but times): ${p.sameEvents.same}/${p.sameEvents.events}.`,
    );
    for (const d of a.disagreements.slice(0, 20))
      lines.push(`- ${d.taskId} (${d.label}): pipeline ${d.pipeline}, replay ${d.replay}`);
  }
  lines.push('');
  lines.push(...loopLines(result.detectors[0].outcomes));
  if (result.escalation !== undefined) {
    lines.push('');
    lines.push(...escalationLines(result.escalation));
  }
  lines.push('');
  lines.push('Requirements (issues 4 and 20):');
  for (const r of result.requirements) lines.push(`- ${r.ok ? 'PASS' : 'FAIL'} ${r.name}: ${r.detail}`);
  lines.push('');
  lines.push(
    "Recall: attacks flagged (alert or revoke) at or after the attack's first event. Precision: detected attacks / all flagged tasks; per pattern, that pattern's attacks against every benign task. Benign alerted counts any alert (revoked included). Delay: from the attack's first event to the first flag, in events (0 = on the first malicious event) and event time. Quiet injections carry no instruction to the model (the text reads as a person's request): Tripline alerts on them and leaves the revocation to a person, so they are reported apart and not in the injection requirements.",
  );
  return lines.join('\n');
}

/** The loop or rate-limit feature a reason names (`loop.repeat: tool …`), if any. */
function loopFeatureOf(reason: string): LoopFeature | undefined {
  const colon = reason.indexOf(':');
  const feature = colon < 0 ? '' : reason.slice(0, colon);
  return (LOOP_FEATURES as readonly string[]).includes(feature) ? (feature as LoopFeature) : undefined;
}

/**
 * Tripline's loop and rate-limit findings (services/core/loops.ts) by label: tasks with a finding of each feature
 * (any step), and tasks revoked by one (the revoke decision's hard rule).
 */
export function loopLines(outcomes: readonly TaskOutcome[]): string[] {
  const byLabel = new Map<string, { tasks: number; features: Map<LoopFeature, number>; revoked: number }>();
  for (const outcome of outcomes) {
    const entry = byLabel.get(outcome.label) ?? { tasks: 0, features: new Map<LoopFeature, number>(), revoked: 0 };
    byLabel.set(outcome.label, entry);
    entry.tasks += 1;
    const seen = new Set<LoopFeature>();
    for (const decision of outcome.decisions)
      for (const reason of decision.reasons) {
        const feature = loopFeatureOf(reason);
        if (feature !== undefined) seen.add(feature);
      }
    for (const feature of seen) entry.features.set(feature, (entry.features.get(feature) ?? 0) + 1);
    const revoke = outcome.decisions.find((decision) => decision.decision === 'revoke');
    if (revoke?.hardRule !== undefined && (LOOP_FEATURES as readonly string[]).includes(revoke.hardRule))
      entry.revoked += 1;
  }
  const lines = [
    'Loop and rate-limit findings (Tripline; policies/limits.json): tasks with a finding of each kind (alert, refuse or revoke step), and tasks a loop or rate limit revoked.',
    '',
    `| | tasks | ${LOOP_FEATURES.join(' | ')} | revoked by a loop or rate limit |`,
    `| --- | ---: | ${LOOP_FEATURES.map(() => '---:').join(' | ')} | ---: |`,
  ];
  const labels = ['benign', ...ALL_ATTACK_PATTERNS].filter((label) => byLabel.has(label));
  for (const label of labels) {
    const entry = byLabel.get(label);
    if (entry === undefined) continue;
    const cells = LOOP_FEATURES.map((feature) => String(entry.features.get(feature) ?? 0));
    lines.push(`| ${label} | ${entry.tasks} | ${cells.join(' | ')} | ${entry.revoked} |`);
  }
  return lines;
}
/**
 * What spend decided (docs/budgets.md): Tripline's tasks flagged by a `budget.*` or the `spend.per_task` feature, by
 * label, and the reason of the first runaway-spend task caught.
 */
function spendLines(result: EvaluationResult): string[] {
  const [tripline] = result.detectors;
  const byLabel = new Map<string, number>();
  let example: string | undefined;
  for (const outcome of tripline.outcomes) {
    const flagged = outcome.decisions.find(
      (decision) => decision.decision !== 'allow' && decision.reasons.some((reason) => BUDGET_REASON.test(reason)),
    );
    if (flagged === undefined) continue;
    byLabel.set(outcome.label, (byLabel.get(outcome.label) ?? 0) + 1);
    if (outcome.label === 'runaway_spend' && example === undefined) example = flagged.reasons[0];
  }
  if (byLabel.size === 0) return [];
  const counts = [...byLabel].map(([label, count]) => `${label} ${String(count)}`).join(', ');
  return [
    '',
    `Spend budgets (shipped policies/budgets.json and model-prices.json unless TRIPLINE_BUDGETS / TRIPLINE_MODEL_PRICES say otherwise): tasks flagged by a budget or by spend.per_task (10× the type's p99): ${counts}.${example === undefined ? '' : ` Example: "${example}"`}`,
  ];
}

/** A budget's reason (core/spend/budgets.ts) or the spend feature's (`spend.per_task`, core/spend/spend-baseline.ts). */
const BUDGET_REASON = /^((task|agent|task type|tenant) budget "|spent \$[\d.]+ on model calls in this task)/;
