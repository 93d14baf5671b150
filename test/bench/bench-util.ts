/**
 * Small measuring helpers of the benchmarks: a monotonic clock, a process's CPU time and memory from /proc
 * (Linux), CPU pinning with taskset, the test broker's process, and the realistic OTLP load the Kafka benchmarks
 * publish.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { OtlpTraceRequest } from '../../schemas/otlp.ts';
import type { EventPublisher } from '../../services/bus/bus.ts';
import { createKafka } from '../../services/bus/kafka/client.ts';
import type { KafkaSettings } from '../../services/bus/kafka/config.ts';
import { createKafkaPublisher } from '../../services/bus/kafka/publisher.ts';
import { classifyRequest } from '../../services/core/classify.ts';
import { TriplineError } from '../../services/shared/errors.ts';
import type { Logger } from '../../services/shared/logger.ts';
import { syntheticRequest } from '../integration/kafka/fixtures.ts';

/** Milliseconds on a monotonic clock. */
export function monotonicEpochMs(): number {
  return performance.timeOrigin + performance.now();
}

let ticksPerSecond: number | undefined;
/** USER_HZ (clock ticks per second of /proc/<pid>/stat), normally 100. */
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** CPU seconds (utime + stime, all threads) a process has used so far, from /proc/<pid>/stat. */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  // Fields after the command name (which is in parentheses and may hold spaces): state is field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / clockTicks();
}

/** Resident set size now and its peak (VmRSS, VmHWM) in MiB, from /proc/<pid>/status. */
export function memoryOf(pid: number): { rssMiB: number; peakRssMiB: number } {
  const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
  const kib = (name: string): number =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssMiB: kib('VmRSS') / 1024, peakRssMiB: kib('VmHWM') / 1024 };
}

/** Pins every thread of a running process to `cpus` (e.g. '0'). */
export function pinProcess(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

/** Whether taskset exists and the machine has at least two CPUs to split. */
export function canPin(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return (
      readFileSync('/proc/cpuinfo', 'utf8')
        .split('\n')
        .filter((line) => line.startsWith('processor')).length >= 2
    );
  } catch {
    return false;
  }
}

/** Samples a process's RSS every `everyMs` until stopped; returns the highest VmRSS seen (MiB). */
export function sampleRss(pid: number, everyMs = 100): { stop(): number } {
  let peak = 0;
  const sample = (): void => {
    try {
      peak = Math.max(peak, memoryOf(pid).rssMiB);
    } catch {
      // process gone
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
}

/** Reads a protobuf varint at `pos`; returns [value, next position]. Values above 2^53 are not needed here. */
function varint(buf: Uint8Array, pos: number): [number, number] {
  let value = 0;
  let shift = 1;
  for (;;) {
    const byte = buf[pos];
    if (byte === undefined) throw new Error('truncated varint');
    pos += 1;
    value += (byte & 0x7f) * shift;
    if (byte < 0x80) return [value, pos];
    shift *= 128;
  }
}

/** Calls `each(start, end)` for every length-delimited field `field` in buf[start, end). */
function forEachField(
  buf: Uint8Array,
  start: number,
  end: number,
  field: number,
  each: (from: number, to: number) => void,
): void {
  let pos = start;
  while (pos < end) {
    const [key, afterKey] = varint(buf, pos);
    pos = afterKey;
    const wire = key % 8;
    const number = Math.floor(key / 8);
    if (wire === 2) {
      const [length, afterLength] = varint(buf, pos);
      if (number === field) each(afterLength, afterLength + length);
      pos = afterLength + length;
    } else if (wire === 0) {
      pos = varint(buf, pos)[1];
    } else if (wire === 1) {
      pos += 8;
    } else if (wire === 5) {
      pos += 4;
    } else {
      throw new Error(`unsupported wire type ${String(wire)}`);
    }
  }
}

/**
 * Spans in an OTLP protobuf `TracesData` / `ExportTraceServiceRequest` (resource_spans = 1 → scope_spans = 2 →
 * spans = 2), counted without decoding them: cheap enough to run beside the load generator.
 */
export function countOtlpSpans(buf: Uint8Array): number {
  let spans = 0;
  forEachField(buf, 0, buf.length, 1, (rs, rsEnd) => {
    forEachField(buf, rs, rsEnd, 2, (ss, ssEnd) => {
      forEachField(buf, ss, ssEnd, 2, () => {
        spans += 1;
      });
    });
  });
  return spans;
}

/**
 * Profiles this process's main thread from now until the returned function is called, which writes a V8
 * `.cpuprofile` to `file` (summarise it with cpuprofile-summary.ts). Only the measured window is sampled, not the
 * set-up around it.
 */
export async function profileWindow(file: string): Promise<() => Promise<void>> {
  const { Session } = await import('node:inspector/promises');
  const { writeFileSync } = await import('node:fs');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}

/** CPU seconds per thread name (`/proc/self/task/<tid>/comm`) of this process so far, all threads of a name summed. */
export function threadCpuByName(): Map<string, number> {
  const byName = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const seconds = (Number(fields[11]) + Number(fields[12])) / clockTicks();
      byName.set(name, (byName.get(name) ?? 0) + seconds);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return byName;
}

/** Thread names whose CPU grew from `before` to `after`, most first: `[name, seconds]`. */
export function threadCpuGrowth(before: Map<string, number>, after: Map<string, number>): [string, number][] {
  return [...after]
    .map(([name, seconds]): [string, number] => [name, seconds - (before.get(name) ?? 0)])
    .filter(([, seconds]) => seconds > 0)
    .sort((a, b) => b[1] - a[1]);
}

/** The JVM of the test broker (test/kafka/broker.sh) on the first of `brokers`' port, when it runs here. */
export function kafkaBrokerPid(brokers: readonly string[]): number | undefined {
  const port = brokers[0]?.split(':')[1] ?? '39092';
  try {
    return Number(readFileSync(join(tmpdir(), `tripline-kafka-${port}`, 'kafka.pid'), 'utf8').trim());
  } catch {
    return undefined;
  }
}

/** Spans per OTLP request of `otlpRequests`. */
export const SPANS_PER_REQUEST = 100;

/**
 * `count` OTLP requests of realistic spans (~450 bytes of protobuf each), five per task (the last carries the
 * task's root span: the task ends), each in a trace of its own, so that records spread over every partition.
 */
export function otlpRequests(count: number, prefix: string): OtlpTraceRequest[] {
  return Array.from({ length: count }, (_, i) =>
    syntheticRequest({
      taskId: `${prefix}-task-${Math.floor(i / 5)}`,
      taskType: `type_${Math.floor(i / 5) % 4}`,
      agentId: `agent-${i % 16}`,
      spans: SPANS_PER_REQUEST,
      rich: true,
      withBoundary: i % 5 === 4,
      startMs: Date.now() - 3_600_000 + i * 200,
    }),
  );
}

/**
 * Publishes `requests` (tenant `default`) with `concurrency` publishes outstanding; returns the events published.
 * A publish refused as retriable (the broker is slow to acknowledge) is tried again after the advised pause, as an
 * agent's exporter does: the store's dedup absorbs a copy that reached Kafka anyway.
 */
export async function publishRequests(
  publisher: Pick<EventPublisher, 'publish'>,
  requests: readonly OtlpTraceRequest[],
  concurrency = 32,
): Promise<number> {
  let events = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests.length) {
        const request = requests[next];
        next += 1;
        if (request === undefined) continue;
        const batch = classifyRequest(request, 'default');
        events += batch.events.length;
        for (;;) {
          try {
            await publisher.publish(batch, request);
            break;
          } catch (error) {
            if (!(error instanceof TriplineError) || !error.retriable) throw error;
            const pause = Number(error.details.retryAfterSeconds ?? 1) * 1000;
            await new Promise((resolve) => setTimeout(resolve, pause));
          }
        }
      }
    }),
  );
  return events;
}

/** The brokers of KAFKA_BROKERS (comma-separated); without any, says how to get them and exits. */
export function benchBrokers(bench: string): string[] {
  const brokers = (process.env.KAFKA_BROKERS ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
  if (brokers.length === 0) {
    console.error(`${bench}: set KAFKA_BROKERS (test/kafka/broker.sh start prints it)`);
    process.exit(2);
  }
  return brokers;
}

/** A started Kafka publisher over `settings`' span topics, as the gateway publishes (its client named `role`). */
export async function startBenchPublisher(
  settings: KafkaSettings,
  logger: Logger,
  role: string,
): Promise<ReturnType<typeof createKafkaPublisher>> {
  const publisher = createKafkaPublisher({
    kafka: createKafka(settings, logger, { role }),
    topics: settings.topics,
    producer: settings.producer,
    logger,
  });
  await publisher.start();
  return publisher;
}
