/**
 * OTLP/HTTP load generator for the gateway-vs-collector benchmark: posts protobuf payload files (see
 * payloads/generate.ts) to `<url>/v1/traces` over keep-alive HTTP/1.1 and reports what happened as one JSON line
 * on stdout. Meant to run on a core of its own (`taskset -c 0 node test/bench/load-generator.ts …`), with the
 * system under test pinned to the other.
 *
 *   node test/bench/load-generator.ts --url http://127.0.0.1:4318 --dir /tmp/payloads \
 *     --rate 10000 --seconds 10          # open loop: a fixed offered load in spans/s
 *   node test/bench/load-generator.ts --url … --dir … --concurrency 32 --seconds 10   # closed loop (saturation)
 *   (--token T sends `Authorization: Bearer T`, as agents of a Tripline gateway do; --fresh-ids 1 writes the
 *   request's sequence number into every trace id of the body, so that each request carries new events rather
 *   than repeating the payload files' — a pipeline that deduplicates events must not see replays)
 *
 * Open loop: requests start on a fixed schedule (rate / spans-per-request per second) whatever the answers;
 * latency is measured from each request's SCHEDULED start (so a stalled server is not hidden by the generator
 * waiting: no coordinated omission). When `--max-in-flight` requests are outstanding the schedule is not kept
 * and `behindSchedule` counts the times the generator had to wait for an answer (the server fell behind).
 * Closed loop: `--concurrency` requests always outstanding, as fast as the server answers.
 * No retries: every non-200 answer and every transport error is counted as a loss.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { monotonicEpochMs } from './bench-util.ts';

interface Options {
  url: URL;
  dir: string;
  rate: number | undefined;
  concurrency: number | undefined;
  seconds: number;
  maxInFlight: number;
  warmupSeconds: number;
  /** Sent as `Authorization: Bearer <token>`. */
  token: string | undefined;
  freshIds: boolean;
}

function parseArgs(argv: string[]): Options {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    const value = argv[i + 1];
    if (key?.startsWith('--') !== true || value === undefined) throw new Error(`bad argument ${String(key)}`);
    values.set(key.slice(2), value);
  }
  const url = values.get('url');
  const dir = values.get('dir');
  if (url === undefined || dir === undefined) throw new Error('--url and --dir are required');
  const num = (key: string): number | undefined => (values.has(key) ? Number(values.get(key)) : undefined);
  const rate = num('rate');
  const concurrency = num('concurrency');
  if ((rate === undefined) === (concurrency === undefined))
    throw new Error('give exactly one of --rate (spans/s) or --concurrency');
  return {
    url: new URL('/v1/traces', url),
    dir,
    rate,
    concurrency,
    seconds: num('seconds') ?? 10,
    maxInFlight: num('max-in-flight') ?? 256,
    warmupSeconds: num('warmup') ?? 0,
    token: values.get('token'),
    freshIds: values.get('fresh-ids') === '1',
  };
}

/** Where a payload file's ids and times lie (payloads/generate.ts). */
interface FreshPlaces {
  traceIdOffsets?: number[][];
  taskSuffixOffsets?: number[][];
  timeOffsets?: number[][];
  firstTimeNs?: string[];
}

/**
 * A copy of file `index`'s body as a new request: its trace ids end in the request's sequence number, its task
 * ids' suffixes are that number in hex (new tasks), and its times are moved so that its first span starts now.
 */
function freshIds(body: Buffer, places: FreshPlaces, index: number, sequence: number): Buffer {
  const traceIds = places.traceIdOffsets?.[index];
  const suffixes = places.taskSuffixOffsets?.[index];
  const times = places.timeOffsets?.[index];
  const first = places.firstTimeNs?.[index];
  if (traceIds === undefined || suffixes === undefined || times === undefined || first === undefined)
    throw new Error(
      '--fresh-ids needs payloads whose manifest lists their places (node test/bench/payloads/generate.ts)',
    );
  const copy = Buffer.from(body);
  for (const at of traceIds) copy.writeUInt32BE(sequence >>> 0, at + 12);
  const suffix = Buffer.from((sequence >>> 0).toString(16).padStart(8, '0'));
  for (const at of suffixes) suffix.copy(copy, at);
  const shift = BigInt(Math.round(monotonicEpochMs() * 1e6)) - BigInt(first);
  for (const at of times) copy.writeBigUInt64LE(copy.readBigUInt64LE(at) + shift, at);
  return copy;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

export interface LoadResult {
  mode: 'rate' | 'concurrency';
  offeredSpansPerSecond: number | null;
  concurrency: number | null;
  seconds: number;
  requests: number;
  ok: number;
  spansOk: number;
  spansSent: number;
  statuses: Record<string, number>;
  errors: number;
  behindSchedule: number;
  achievedSpansPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  loadGeneratorCpuSeconds: number;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const files = readdirSync(options.dir)
    .filter((name) => name.endsWith('.pb'))
    .sort();
  const manifest = JSON.parse(readFileSync(join(options.dir, 'manifest.json'), 'utf8')) as FreshPlaces & {
    spans: number[];
  };
  const bodies = files.map((name) => readFileSync(join(options.dir, name)));
  const spansOf = manifest.spans;
  if (bodies.length === 0) throw new Error(`no .pb payloads in ${options.dir}`);
  const perRequest = spansOf.reduce((a, b) => a + b, 0) / spansOf.length;

  const agent = new Agent({ keepAlive: true, maxSockets: options.maxInFlight, maxFreeSockets: options.maxInFlight });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let requests = 0;
  let ok = 0;
  let spansOk = 0;
  let spansSent = 0;
  let errors = 0;
  let behind = 0;
  let inFlight = 0;
  let next = 0;
  let measuring = options.warmupSeconds === 0;

  const send = (scheduledMs: number): Promise<void> =>
    new Promise((resolve) => {
      const index = next % bodies.length;
      next += 1;
      const body = options.freshIds
        ? freshIds(bodies[index] as Buffer, manifest, index, next)
        : (bodies[index] as Buffer);
      const spans = spansOf[index] ?? 0;
      const counted = measuring;
      if (counted) {
        requests += 1;
        spansSent += spans;
      }
      inFlight += 1;
      const done = (status: string): void => {
        inFlight -= 1;
        if (counted) {
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (status === '200') {
            ok += 1;
            spansOk += spans;
          }
          latencies.push(monotonicEpochMs() - scheduledMs);
        }
        resolve();
      };
      const req = request(
        options.url,
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/x-protobuf',
            'content-length': body.length,
            ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => done(String(res.statusCode)));
          res.on('error', () => {
            if (counted) errors += 1;
            done('error');
          });
        },
      );
      req.on('error', () => {
        if (counted) errors += 1;
        done('error');
      });
      req.end(body);
    });

  const cpuStart = process.cpuUsage();
  const warmupEnd = monotonicEpochMs() + options.warmupSeconds * 1000;
  let start = monotonicEpochMs();
  const pending = new Set<Promise<void>>();
  const track = (promise: Promise<void>): void => {
    pending.add(promise);
    void promise.then(() => pending.delete(promise));
  };

  if (options.rate !== undefined) {
    const intervalMs = (1000 * perRequest) / options.rate;
    let scheduled = start;
    const end = start + (options.seconds + options.warmupSeconds) * 1000;
    while (scheduled < end) {
      const now = monotonicEpochMs();
      if (!measuring && now >= warmupEnd) {
        measuring = true;
        start = now;
      }
      if (scheduled <= now) {
        if (inFlight < options.maxInFlight) {
          track(send(scheduled));
          scheduled += intervalMs;
        } else {
          // Over the in-flight cap: the server is not keeping up; wait for an answer (the schedule slips, and
          // the latency of the late requests, measured from their scheduled start, shows it).
          if (measuring) behind += 1;
          await Promise.race(pending);
        }
      } else {
        const wait = scheduled - now;
        await new Promise((resolve) => setTimeout(resolve, wait > 2 ? wait - 1 : 0));
      }
    }
  } else {
    const concurrency = options.concurrency ?? 1;
    const end = start + (options.seconds + options.warmupSeconds) * 1000;
    const worker = async (): Promise<void> => {
      while (monotonicEpochMs() < end) {
        if (!measuring && monotonicEpochMs() >= warmupEnd) {
          measuring = true;
          start = monotonicEpochMs();
        }
        await send(monotonicEpochMs());
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }
  await Promise.all(pending);
  const elapsed = (monotonicEpochMs() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  agent.destroy();
  const sorted = Float64Array.from(latencies).sort();
  const result: LoadResult = {
    mode: options.rate === undefined ? 'concurrency' : 'rate',
    offeredSpansPerSecond: options.rate ?? null,
    concurrency: options.concurrency ?? null,
    seconds: elapsed,
    requests,
    ok,
    spansOk,
    spansSent,
    statuses,
    errors,
    behindSchedule: behind,
    achievedSpansPerSecond: spansOk / elapsed,
    latencyMs: {
      p50: percentile(sorted, 0.5),
      p90: percentile(sorted, 0.9),
      p99: percentile(sorted, 0.99),
      max: sorted[sorted.length - 1] ?? Number.NaN,
    },
    loadGeneratorCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (import.meta.main) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `load-generator: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  });
}
