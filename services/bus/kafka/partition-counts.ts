/**
 * The partition counts of the span topics, as the publisher knows them: to tell which partition a record's key
 * goes to (the producer's partitioner decides the same), for sizing produce requests per partition.
 */
import type { Kafka } from 'kafkajs';
import { messageOf } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { KafkaTopics } from './config.ts';
import { partitionOfKey } from './partitioner.ts';

export class SpanTopicPartitionCounts {
  private readonly kafka: Kafka;
  private readonly topics: KafkaTopics;
  private readonly counts = new Map<string, number>();
  private refreshTimer: NodeJS.Timeout | undefined;

  constructor(kafka: Kafka, topics: KafkaTopics) {
    this.kafka = kafka;
    this.topics = topics;
  }

  /** The partition the producer's partitioner (KeyHashPartitioner) picks for a key. */
  partitionOf(topic: string, key: string): number {
    return partitionOfKey(key, this.counts.get(topic) ?? 1);
  }

  async refresh(): Promise<void> {
    const { topics } = this;
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      const metadata = await admin.fetchTopicMetadata({
        topics: [topics.tool_call, topics.data_access, topics.privilege_change],
      });
      for (const topic of metadata.topics) this.counts.set(topic.name, topic.partitions.length);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** Partitions may be added while running: keep the sizing of produce requests close to the truth. */
  refreshEvery(intervalMs: number, logger: Logger): void {
    this.refreshTimer = setInterval(() => {
      this.refresh().catch((error: unknown) =>
        logger.debug({ err: messageOf(error) }, 'refreshing partition counts failed'),
      );
    }, intervalMs);
    this.refreshTimer.unref();
  }

  stopRefreshing(): void {
    if (this.refreshTimer !== undefined) clearInterval(this.refreshTimer);
  }
}
