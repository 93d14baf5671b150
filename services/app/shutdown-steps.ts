/**
 * Named cleanups run in reverse order of registration, once, each logged as it starts and finishes (debug), so a
 * shutdown that does not end names the step it waits on: `pending()` lists the steps under way (with those of a
 * nested step's own steps, e.g. `kill switch > approvals store`), which the signal handler logs when the shutdown
 * grace runs out (services/app/distributed-main.ts).
 */
import { messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';

export interface ShutdownSteps {
  /** Registers a cleanup; `inner` lists the pending steps of a part that has steps of its own. */
  add(name: string, cleanup: () => Promise<void> | void, inner?: () => readonly string[]): void;
  /** Runs the cleanups (latest first); a failed one is logged and the rest still run. Idempotent. */
  run(): Promise<void>;
  /** The steps started and not finished. */
  pending(): string[];
}

interface Step {
  name: string;
  cleanup: () => Promise<void> | void;
  inner: (() => readonly string[]) | undefined;
}

export function createShutdownSteps(logger: Logger, errorMessage = 'error while stopping'): ShutdownSteps {
  const steps: Step[] = [];
  const running = new Set<Step>();
  let stopping: Promise<void> | undefined;

  async function runOne(step: Step): Promise<void> {
    const startedMs = Date.now();
    running.add(step);
    logger.debug({ step: step.name }, 'shutdown step started');
    try {
      await step.cleanup();
      logger.debug({ step: step.name, ms: Date.now() - startedMs }, 'shutdown step finished');
    } catch (error) {
      logger.error({ step: step.name, err: messageOf(error) }, errorMessage);
    } finally {
      running.delete(step);
    }
  }

  return {
    add(name, cleanup, inner) {
      steps.push({ name, cleanup, inner });
    },
    run() {
      stopping ??= (async () => {
        for (const step of steps.splice(0).reverse()) await runOne(step);
      })();
      return stopping;
    },
    pending() {
      return [...running].flatMap((step) => {
        const inner = step.inner?.() ?? [];
        return inner.length === 0 ? [step.name] : inner.map((name) => `${step.name} > ${name}`);
      });
    },
  };
}
