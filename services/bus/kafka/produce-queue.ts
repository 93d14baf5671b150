/**
 * The publisher's accumulator: records accepted by `publish()` and not yet taken into a produce request, in
 * acceptance order, and how the next produce request is cut from them (see publisher.ts, Delivery).
 */
import type { Message } from 'kafkajs';

/** A produce request holds at most this many times `maxBatchBytes` (each partition at most `maxBatchBytes`). */
const MAX_REQUEST_BATCHES = 16;

/** One `publish()` call: resolves once Kafka acknowledged each of its records. */
export interface Publication {
  /** When it was accepted (Date.now()): its records wait at most `lingerMs` from then. */
  acceptedAt: number;
  remaining: number;
  settled: boolean;
  /** Timed out: its queued records are skipped. */
  withdrawn: boolean;
  resolve: () => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout | undefined;
}

export interface Queued {
  topic: string;
  /** The partition the record will go to (for sizing produce requests; kafkajs partitions it itself). */
  partition: number;
  message: Message;
  bytes: number;
  publication: Publication;
}

/** Answers a publication once (its time-out timer is cleared). */
export function settle(publication: Publication, error?: unknown): void {
  if (publication.settled) return;
  publication.settled = true;
  if (publication.timer !== undefined) clearTimeout(publication.timer);
  if (error === undefined) publication.resolve();
  else publication.reject(error);
}

export class ProduceQueue {
  private readonly queue: Queued[] = [];
  private queueHead = 0;
  /** Bytes of the queued records (not yet taken into a produce request). */
  private queuedBytes = 0;
  private readonly maxBatchBytes: number;

  constructor(maxBatchBytes: number) {
    this.maxBatchBytes = maxBatchBytes;
  }

  count(): number {
    return this.queue.length - this.queueHead;
  }

  bytes(): number {
    return this.queuedBytes;
  }

  /** The record queued first (the one that has lingered longest). */
  oldest(): Queued | undefined {
    return this.queue[this.queueHead];
  }

  push(item: Queued): void {
    this.queue.push(item);
    this.queuedBytes += item.bytes;
  }

  /**
   * The next produce request: records in queue order, at most `maxBatchBytes` per partition (kafkajs writes
   * a request's records of one partition as one record batch, which the broker caps at `message.max.bytes`)
   * and MAX_REQUEST_BATCHES times that in all. A record whose partition is full waits, and so do the later
   * records of that partition, so each partition keeps its order. Records of withdrawn publications are
   * dropped on the way; `withdrawnBytes` are their bytes.
   */
  takeBatch(): { taken: Queued[]; withdrawnBytes: number } {
    const { queue } = this;
    const taken: Queued[] = [];
    const deferred: Queued[] = [];
    const perPartition = new Map<string, number>();
    const full = new Set<string>();
    const maxRequestBytes = this.maxBatchBytes * MAX_REQUEST_BATCHES;
    let withdrawnBytes = 0;
    let total = 0;
    let index = this.queueHead;
    for (; index < queue.length; index += 1) {
      const next = queue[index];
      if (next === undefined) continue;
      if (next.publication.withdrawn) {
        withdrawnBytes += next.bytes;
        this.queuedBytes -= next.bytes;
        continue;
      }
      if (taken.length > 0 && total + next.bytes > maxRequestBytes) break;
      const slot = `${next.topic}|${String(next.partition)}`;
      const used = perPartition.get(slot) ?? 0;
      if (full.has(slot) || (used > 0 && used + next.bytes > this.maxBatchBytes)) {
        full.add(slot);
        deferred.push(next);
        continue;
      }
      perPartition.set(slot, used + next.bytes);
      total += next.bytes;
      this.queuedBytes -= next.bytes;
      taken.push(next);
    }
    this.compact(index, deferred);
    return { taken, withdrawnBytes };
  }

  /** Drops what `takeBatch` went through up to `index`, keeping the `deferred` records first. */
  private compact(index: number, deferred: Queued[]): void {
    const { queue } = this;
    if (deferred.length === 0 && index - this.queueHead < 4096 && index < queue.length) {
      this.queueHead = index;
    } else {
      const rest = queue.slice(index);
      queue.length = 0;
      queue.push(...deferred, ...rest);
      this.queueHead = 0;
    }
    if (this.queueHead > 1024 && this.queueHead * 2 > queue.length) {
      queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  /** Empties the queue, answering each queued record's publication with `error`. */
  clear(error: unknown): void {
    const { queue } = this;
    for (let i = this.queueHead; i < queue.length; i += 1) {
      const item = queue[i];
      if (item !== undefined) settle(item.publication, error);
    }
    queue.length = 0;
    this.queueHead = 0;
    this.queuedBytes = 0;
  }
}
