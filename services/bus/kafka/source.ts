/**
 * The processor's side of the Kafka bus: an EventSource over one consumer group reading the three span topics.
 *
 * Records. Each record is an OTLP `ExportTraceServiceRequest`/`TracesData` in protobuf (what Tripline's gateway
 * and the upstream collector's kafka exporter with `otlp_proto` write; `otlp_json` records, which start with
 * `{`, are read too). A record may hold many resources and spans; its key may be a task id (the gateway), a
 * trace id (the collector with `partition_traces_by_id: true`) or null, and is not needed to decode it. Spans are
 * classified with the same `classifyRequest` as in embedded mode; the tenant is the `tripline-tenant` header, or
 * `default`. A record that cannot be decoded, is empty or holds no span is copied to the dead-letter topic with
 * headers `tripline-dlq-reason`, `tripline-dlq-topic`, `tripline-dlq-partition`, `tripline-dlq-offset` (its
 * own headers and key kept) and skipped: it never blocks its partition.
 *
 * Batches. The batches of one fetch (all partitions the fetch returned, across the three topics) are merged and
 * handed to the handler as one EventBatch (or several of at most `maxEventsPerBatch` events, the task-boundary
 * spans with the last), so the store takes few, large writes and the events of a task that arrived on different
 * topics meet in one batch.
 *
 * Commits (at-least-once). Offsets are committed only after the handler resolved, i.e. after the results are
 * durable in ClickHouse, and after the dead letters were acknowledged. A member that dies before committing
 * leaves its records to the next owner, which replays them; the processor's outputs have deterministic ids so
 * the replay adds no duplicate. Records this process already handed to its handler are never handed again
 * (kept per partition), even if a failed commit makes Kafka deliver them again.
 *
 * Pipelining. The next fetch does not wait for the previous one's commit: a fetch's records are handed to the
 * handler as soon as the previous fetch's were (the processor scores them — and decides a kill among them —
 * while earlier results are still being written), and the commits follow in fetch order, each once its own
 * results are durable. At most `maxUncommittedFetches` fetches are handed over and not yet committed; past
 * that, the consumer stops fetching until a commit frees a slot. A rebalance (the classic, eager protocol) no
 * longer waits for those commits: one made after the member lost the partition fails or is superseded, and the
 * next owner replays the records from the last commit (harmlessly, as above). If a fetch's handling fails
 * (the handler rejects), nothing handed after it is committed either: the consumer goes back to the first
 * record not committed of each partition concerned (a seek) and hands those records again once the fetches in
 * the pipeline have settled.
 *
 * Co-partitioning. The consumer uses `coPartitionAssigner`, so this member owns the same partition numbers of
 * all three topics. `onAssignment` reports each new assignment (the processor then looks up tasks it has not
 * seen in the store before scoring them), `onTasksReleased` the tasks of partition numbers it lost, so their
 * state can be dropped and rebuilt by whoever owns them next.
 */
import type { Kafka } from 'kafkajs';
import type { ClassifyOptions } from '../../core/classify.ts';
import type { Logger } from '../../shared/logger.ts';
import type { EventSource } from '../bus.ts';
import type { KafkaSettings } from './config.ts';
import { SpanSourceConsumer } from './source-consumer.ts';
import type { TaskRef } from './span-record-decoding.ts';

export { DEAD_LETTER_HEADERS } from './span-record-decoding.ts';
export type { TaskRef } from './span-record-decoding.ts';

export interface KafkaSourceOptions {
  kafka: Kafka;
  settings: Pick<KafkaSettings, 'groupId' | 'topics' | 'consumer' | 'partitions'>;
  logger: Logger;
  /** A group without committed offsets starts at the earliest record. @default true */
  fromBeginning?: boolean;
  /**
   * Runs after the handler resolved and before the offsets are committed; a rejection is retried (the
   * handler is not run again). The processor service flushes its alert/revocation publications here.
   */
  beforeCommit?: () => Promise<void>;
  /**
   * After each (re)join of the group: the partition numbers this member owns now and those it gained (which
   * may hold tasks another processor began). Runs before any record of the new assignment is handed over.
   */
  onAssignment?: (assignment: { partitions: number[]; gained: number[] }) => void;
  /** Tasks seen on partition numbers this member lost in a rebalance. */
  onTasksReleased?: (tasks: TaskRef[]) => void;
  /** Most task ids remembered per partition number for `onTasksReleased`. @default 50000 */
  tasksPerPartitionMemory?: number;
  /**
   * How long `stop()` waits for the batch in hand; after it the member leaves without committing that batch
   * (it is replayed by the next owner). @default 30000
   */
  drainTimeoutMs?: number;
  /**
   * Most events per handler call: a big fetch is handed over in several calls (the task-boundary spans with the
   * last one), all of them before the fetch's offsets are committed. @default 5000
   */
  maxEventsPerBatch?: number;
  /** Fetches handed to the handler whose offsets are not committed yet, at most (see Pipelining). @default 4 */
  maxUncommittedFetches?: number;
  /** How spans are classified (the counterparties' hashing key, whether tool content is stored). */
  classify?: ClassifyOptions;
}

export interface KafkaSourceStats {
  records: number;
  deadLetters: number;
  /** Records skipped because this process had handled them already. */
  skippedReplays: number;
  batches: number;
  events: number;
  boundaries: number;
  commits: number;
  failedCommits: number;
}

export interface KafkaEventSource extends EventSource {
  /** Partition numbers this member owns now. */
  assignedPartitions(): number[];
  stats(): Readonly<KafkaSourceStats>;
}

export function createKafkaSource(options: KafkaSourceOptions): KafkaEventSource {
  const source = new SpanSourceConsumer(options);
  return {
    start: (batchHandler) => source.start(batchHandler),
    stop: () => source.stop(),
    assignedPartitions: () => source.ownership.partitions(),
    stats: () => source.stats,
  };
}
