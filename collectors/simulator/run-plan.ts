/**
 * Runs task plans as a real instrumented agent: every planned event becomes a span through the agent
 * helpers (`@opentelemetry/sdk-node`, OTLP over HTTP). Span times come from a simulated clock that starts
 * at the wall clock and advances by the planned gaps, so tasks have realistic durations without the run
 * taking that long.
 */
import type { TaskHandle, Telemetry } from '../agent/index.ts';
import type { PlannedEvent, TaskPlan } from './scenarios.ts';

export interface PlanProgress {
  taskId: string;
  taskType: string;
  label: TaskPlan['label'];
  events: number;
  /** The task failed in the agent (e.g. its credentials were revoked). */
  error?: string;
}

class PlannedFailure extends Error {
  override readonly name = 'PlannedFailure';
}

export async function runPlans(telemetry: Telemetry, plans: readonly TaskPlan[], onTask: (progress: PlanProgress) => void, startMs = Date.now()): Promise<void> {
  let clock = startMs;
  const step = (event: PlannedEvent): { startTime: number; endTime: number } => {
    clock += event.gapMs;
    const timing = { startTime: clock, endTime: clock + event.durationMs };
    clock = timing.endTime;
    return timing;
  };

  for (const plan of plans) {
    const taskStart = clock;
    let taskEnd = clock;
    let error: string | undefined;
    try {
      await telemetry.task(
        plan.taskType,
        async (task) => {
          for (const event of plan.events) await emit(task, event, step(event));
          taskEnd = clock + 5;
        },
        { taskId: plan.taskId, timing: { startTime: taskStart, get endTime() { return taskEnd; } } },
      );
    } catch (caught) {
      error = caught instanceof Error ? caught.message : String(caught);
    }
    if (plan.afterEnd.length > 0) {
      clock = taskEnd + 2000;
      const late = telemetry.detachedTask(plan.taskType, plan.taskId);
      for (const event of plan.afterEnd) {
        try {
          await emit(late, event, step(event));
        } catch (caught) {
          error ??= caught instanceof Error ? caught.message : String(caught);
        }
      }
    }
    onTask({ taskId: plan.taskId, taskType: plan.taskType, label: plan.label, events: plan.events.length + plan.afterEnd.length, ...(error === undefined ? {} : { error }) });
  }
}

async function emit(task: TaskHandle, event: PlannedEvent, timing: { startTime: number; endTime: number }): Promise<void> {
  const work = (): void => {
    if (event.error === true) throw new PlannedFailure('simulated failure');
  };
  const run = async (): Promise<void> => {
    switch (event.kind) {
      case 'tool_call':
        await task.toolCall(event.tool, { ...(event.sideEffect === undefined ? {} : { sideEffect: event.sideEffect }), ...(event.target === undefined ? {} : { target: event.target }) }, work, timing);
        return;
      case 'data_access': {
        const { kind: _kind, gapMs: _gap, durationMs: _duration, error: _error, ...fields } = event;
        await task.dataAccess(fields, work, timing);
        return;
      }
      case 'privilege_change': {
        const { kind: _kind, gapMs: _gap, durationMs: _duration, error: _error, ...fields } = event;
        await task.privilegeChange(fields, work, timing);
        return;
      }
    }
  };
  try {
    await run();
  } catch (error) {
    if (!(error instanceof PlannedFailure)) throw error;
  }
}
