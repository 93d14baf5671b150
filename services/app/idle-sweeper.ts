/**
 * The processor's idle-task sweep on a timer, shared by the embedded and the distributed processor: every
 * quarter of the idle timeout (between 1 s and 60 s), tasks idle for longer than the timeout are completed.
 */
import type { Processor } from '../processor/processor.ts';
import { messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';

/** Starts sweeping; returns the cleanup that stops it. */
export function startIdleSweeper(
  processor: Pick<Processor, 'sweep'>,
  taskIdleTimeoutMs: number,
  logger: Logger,
): () => Promise<void> {
  const sweepEvery = Math.max(1000, Math.min(60_000, Math.floor(taskIdleTimeoutMs / 4)));
  const sweeper = setInterval(() => {
    processor.sweep().catch((error: unknown) => logger.error({ err: messageOf(error) }, 'idle-task sweep failed'));
  }, sweepEvery);
  sweeper.unref();
  return () => {
    clearInterval(sweeper);
    return Promise.resolve();
  };
}
