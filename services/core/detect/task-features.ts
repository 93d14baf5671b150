/**
 * Features scored on every event, whatever its kind: credentials used after the task ended (a hard rule), failing
 * calls and probing storms (on failed events), and the task's size and duration.
 */
import { DEFAULT_AFTER_END_GRACE_MS } from './config.ts';
import { add, hard, baselineRef, partialUpper, numeric, type Ctx } from './evidence.ts';
import { fmtDuration, fmtNum, fmtPercent } from './format.ts';

export function lifecycle(ctx: Ctx): void {
  const ended = ctx.state.endedMs;
  // A span of the trace whose root ended the task is part of the task, however late its clock says it started.
  if (ended === null || (ctx.state.endedByTrace !== null && ctx.event.traceId === ctx.state.endedByTrace)) return;
  const late = ctx.event.startMs - ended;
  if (late > (ctx.config.afterEndGraceMs ?? DEFAULT_AFTER_END_GRACE_MS)) {
    hard(
      ctx,
      'after_end',
      'lifecycle',
      'lifecycle.after_end',
      `${ctx.event.kind.replace('_', ' ')} "${ctx.event.name}" ${fmtDuration(late)} after the task ended: its credentials were used after the task`,
    );
  }
}

export function errors(ctx: Ctx): void {
  const { state } = ctx;
  const e = state.errorsLastMinute;
  numeric(
    ctx,
    'errors',
    'errors.per_minute',
    'maxErrorsPerMinute',
    e,
    5,
    100,
    fmtNum,
    () => `${fmtNum(e)} failing calls in the last minute`,
  );
  numeric(
    ctx,
    'errors',
    'errors.per_task',
    'errors',
    state.errors,
    3,
    90,
    fmtNum,
    () => `${fmtNum(state.errors)} failing calls in this task`,
  );
  if (state.events >= 10) {
    const rate = state.errors / state.events;
    numeric(
      ctx,
      'errors',
      'errors.rate',
      'errorRate',
      rate,
      0.1,
      50,
      fmtPercent,
      () => `${fmtPercent(rate)} of this task's ${fmtNum(state.events)} events failed`,
    );
  }
  // Probing storm: a burst of mostly failing calls, beyond anything the type does, across many targets.
  const window = Math.max(1, state.eventsLastMinute);
  const limit =
    ctx.primary !== undefined
      ? Math.max(10, baselineRef(ctx, ctx.primary, 'maxErrorsPerMinute', 5).upper)
      : Math.max(10, partialUpper(ctx, 'maxErrorsPerMinute', 5));
  if (e >= limit && e / window >= 0.5) {
    const targets = state.failingTargets.size;
    const s = 50 + 3 * (e - limit) + (targets >= 5 ? 10 : 0);
    add(
      ctx,
      'errors',
      'errors.storm',
      Math.min(100, s),
      `probing storm: ${fmtNum(e)} failing calls in the last minute (${fmtPercent(e / window)} of calls), against ${fmtNum(targets)} different targets; ${ctx.regime === 'rules' ? 'the rule allows' : ctx.who + ' stay under'} ${fmtNum(limit)}`,
    );
  }
}

export function shape(ctx: Ctx): void {
  const { state, event } = ctx;
  numeric(
    ctx,
    'size',
    'shape.events_per_task',
    'events',
    state.events,
    15,
    50,
    fmtNum,
    () => `${fmtNum(state.events)} events in this task so far`,
  );
  const elapsed = Math.max(event.endMs, event.startMs) - state.startedMs;
  numeric(
    ctx,
    'size',
    'shape.duration',
    'durationMs',
    elapsed,
    120_000,
    40,
    fmtDuration,
    () => `task running for ${fmtDuration(elapsed)}`,
  );
}
