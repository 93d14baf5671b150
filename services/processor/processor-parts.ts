/**
 * What the processor's steps (scoring, task ends, history, manual actions) share: the store and kill switch it
 * acts through, the tasks and baselines it holds, and the hooks it calls.
 */
import type { AgentEvent } from '../../schemas/events.ts';
import type { DetectorConfig } from '../core/detect/index.ts';
import type { LoopPolicy } from '../core/loop-policy.ts';
import type { SpendBaselines, SpendLedger, SpendSettings } from '../core/spend/index.ts';
import type { KillSwitch } from '../killswitch/kill-switch.ts';
import { messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { Store } from '../store/store.ts';
import type { AgentEscalation } from './agent-escalation.ts';
import type { BaselineBook } from './baseline-book.ts';
import type { BatchOutput } from './batch-output.ts';
import type { TaskResolver } from './task-resolver.ts';
import type { TaskTable } from './task-table.ts';
import type { KillMemory } from './task-tree.ts';

export interface ProcessorHooks {
  /** An event of a task that is revoked now (after scoring): evidence the agent kept acting, or not. */
  onRevokedTaskEvent?: (event: AgentEvent) => void;
  /** A task completed (its task span ended, or it went idle). */
  onTaskEnded?: (tenant: string, taskId: string, endMs: number) => void;
}

export interface ProcessorParts {
  store: Store;
  killSwitch: KillSwitch;
  logger: Logger;
  detector: DetectorConfig;
  /** Loop and rate limits (services/core/loops.ts); `enabled: false` counts nothing. */
  loops: LoopPolicy;
  now: () => number;
  hooks: ProcessorHooks | undefined;
  tasks: TaskTable;
  resolver: TaskResolver;
  /** Replaced whole when a published version arrives (distributed mode). */
  book: BaselineBook;
  /** Completed benign tasks teach `book` (false: the learner of record does, from the store). */
  learnOnline: boolean;
  /** Undefined when the processor never escalates. */
  escalation: AgentEscalation | undefined;
  /** The kills in force this process applied, by task (task-tree.ts: a child appearing after its parent's kill). */
  kills: KillMemory;
  /** Prices and budgets of model calls, and the spend of windowed budgets this processor counted (spend-scoring.ts). */
  spend: SpendSettings & { ledger: SpendLedger; baselines: SpendBaselines };
}

/** Calls a hook; a throwing hook is logged and ignored. */
export function runHook(parts: ProcessorParts, name: keyof ProcessorHooks, call: () => void): void {
  try {
    call();
  } catch (error) {
    parts.logger.error({ hook: name, err: messageOf(error) }, 'a processor hook failed');
  }
}

/** Revokes the active tasks of the agents that escalated since the last step (see AgentEscalation). */
export function applyEscalations(parts: ProcessorParts, output: BatchOutput): void {
  parts.escalation?.applyPending(() => parts.tasks.liveTasks(), output);
}
