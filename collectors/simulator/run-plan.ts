/**
 * Runs task plans as a real instrumented agent: every planned event becomes a span through the agent
 * helpers (`@opentelemetry/sdk-node`, OTLP over HTTP). Spans carry real wall-clock times: the planned gaps
 * and durations are waited out, scaled by `timeScale` (default 1/100), so a task that would take a minute
 * takes 0.6 s and its timestamps stay comparable with the wall clock (revocation times, verification).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { TaskHandle, Telemetry } from '../../kits/typescript/src/index.ts';
import { recordedCall } from './planned-events.ts';
import type { PlannedEvent, TaskPlan } from './scenarios.ts';

export interface PlanProgress {
  taskId: string;
  taskType: string;
  label: TaskPlan['label'];
  events: number;
  /** The task failed in the agent (e.g. its credentials were revoked). */
  error?: string;
}

const AFTER_END_DELAY_MS = 1500;

class PlannedFailure extends Error {
  override readonly name = 'PlannedFailure';
}

export interface RunOptions {
  /** Real time per planned time: 0.01 waits 15 ms for a planned 1.5 s gap. */
  timeScale?: number;
}

export async function runPlans(
  telemetry: Telemetry,
  plans: readonly TaskPlan[],
  onTask: (progress: PlanProgress) => void,
  options: RunOptions = {},
): Promise<void> {
  const scale = options.timeScale ?? 0.01;
  const wait = (plannedMs: number): Promise<void> => sleep(Math.max(0, Math.round(plannedMs * scale)));

  for (const plan of plans) {
    let error: string | undefined;
    try {
      await telemetry.task(
        plan.taskType,
        async (task) => {
          for (const event of plan.events) {
            await wait(event.gapMs);
            await emit(task, event, () => wait(event.durationMs));
          }
        },
        { taskId: plan.taskId },
      );
    } catch (caught) {
      error = caught instanceof Error ? caught.message : String(caught);
    }
    if (plan.afterEnd.length > 0) {
      // Credentials used after the task ended: the task span has ended; these events still carry its id.
      // Real seconds, not scaled: a second of slack for clock skew is normal, use well after it is not.
      await sleep(AFTER_END_DELAY_MS);
      const late = telemetry.detachedTask(plan.taskType, plan.taskId);
      for (const event of plan.afterEnd) {
        try {
          await wait(event.gapMs);
          await emit(late, event, () => wait(event.durationMs));
        } catch (caught) {
          error ??= caught instanceof Error ? caught.message : String(caught);
        }
      }
    }
    onTask({
      taskId: plan.taskId,
      taskType: plan.taskType,
      label: plan.label,
      events: plan.events.length + plan.afterEnd.length,
      ...(error === undefined ? {} : { error }),
    });
  }
}

async function emit(task: TaskHandle, event: PlannedEvent, doWork: () => Promise<void>): Promise<void> {
  const work = async (): Promise<void> => {
    await doWork();
    if (event.error === true) throw new PlannedFailure('simulated failure');
  };
  const run = async (): Promise<void> => {
    switch (event.kind) {
      case 'tool_call':
        await task.toolCall(
          event.tool,
          {
            ...(event.sideEffect === undefined ? {} : { sideEffect: event.sideEffect }),
            ...(event.target === undefined ? {} : { target: event.target }),
            // Arguments and result as frameworks record them; the plan knows the result before the call.
            attributes: recordedCall(event),
          },
          work,
        );
        return;
      case 'data_access': {
        const { kind: _kind, gapMs: _gap, durationMs: _duration, error: _error, ...fields } = event;
        await task.dataAccess(fields, work);
        return;
      }
      case 'privilege_change': {
        const { kind: _kind, gapMs: _gap, durationMs: _duration, error: _error, ...fields } = event;
        await task.privilegeChange(fields, work);
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
