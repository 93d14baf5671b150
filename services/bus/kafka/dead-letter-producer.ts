/**
 * The source's producer for the dead-letter topic (records that cannot be decoded, see source.ts, Records).
 */
import { CompressionTypes, Partitioners } from 'kafkajs';
import type { Kafka, Message, Producer } from 'kafkajs';

interface Connection {
  producer: Producer;
  connected: Promise<void> | undefined;
}

export class DeadLetterProducer {
  private readonly kafka: Kafka;
  private readonly topic: string;
  private current: Connection;

  constructor(kafka: Kafka, topic: string) {
    this.kafka = kafka;
    this.topic = topic;
    this.current = this.fresh();
  }

  private fresh(): Connection {
    return {
      producer: this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
        // Idempotence needs unlimited retries (kafkajs warns otherwise); short backoffs.
        retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 2000 },
      }),
      connected: undefined,
    };
  }

  connect(): Promise<void> {
    const current = this.current;
    current.connected = current.producer.connect();
    return current.connected;
  }

  /**
   * Sends dead letters; after a failed send the producer is replaced, not reused: kafkajs rolls back the
   * idempotence sequences of a failed request, and the broker would then drop the next batch as a duplicate
   * of one it wrote (see replaceProducer in produce-sender.ts).
   */
  async send(messages: Message[]): Promise<void> {
    const current = this.current;
    try {
      current.connected ??= current.producer.connect();
      await current.connected;
      await current.producer.send({ topic: this.topic, messages, acks: -1, compression: CompressionTypes.None });
    } catch (error) {
      if (this.current === current) {
        this.current = this.fresh();
        current.producer.disconnect().catch(() => undefined);
      }
      throw error;
    }
  }

  disconnect(): Promise<void> {
    return this.current.producer.disconnect();
  }
}
