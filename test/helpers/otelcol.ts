/**
 * The real upstream OpenTelemetry Collector (built by collectors/otelcol/build.sh from
 * collectors/otelcol/builder.yaml) as a child process, for the compatibility test and the benchmark.
 *
 * - `otelcolBinary()` finds the binary: `TRIPLINE_OTELCOL_BIN`, else the build script's cache
 *   (`${TRIPLINE_OTELCOL_CACHE:-$HOME/.cache/tripline/otelcol-<version>}/otelcol-tripline`). When it is missing
 *   it THROWS with a message naming `collectors/otelcol/build.sh` (tests fail, never skip).
 * - `startOtelcol({ config, env, otlpHttpPort })` starts it with the given config file and environment (brokers,
 *   topics, ports), waits until its OTLP/HTTP port answers HTTP (polling, never a fixed sleep; fails early with
 *   the collector's log when it exits), and captures its log. The collector's own telemetry is turned off
 *   (`service::telemetry::metrics::level: none`), so several can run side by side without fighting over :8888.
 * - `stop()` sends SIGTERM (the collector drains its queues), then SIGKILL after `stopTimeoutMs`.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, createWriteStream, readFileSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { request } from 'node:http';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const OTELCOL_BUILD_SCRIPT = 'collectors/otelcol/build.sh';
export const OTELCOL_MANIFEST = fileURLToPath(new URL('../../collectors/otelcol/builder.yaml', import.meta.url));
export const OTELCOL_CONFIG = fileURLToPath(new URL('../../collectors/otelcol/config.yaml', import.meta.url));
/** The authenticated collector in front of Tripline's gateway (bearer tokens in, the collector's token out). */
export const OTELCOL_GATEWAY_CONFIG = fileURLToPath(new URL('../../collectors/otelcol/gateway.yaml', import.meta.url));
const BINARY_NAME = 'otelcol-tripline';

/** The pinned collector version: `dist.version` of collectors/otelcol/builder.yaml. */
export function otelcolVersion(manifest = OTELCOL_MANIFEST): string {
  const text = readFileSync(manifest, 'utf8');
  const dist = /^dist:\s*\n((?:[ \t]+.*\n?|\s*\n)*)/m.exec(text)?.[1] ?? '';
  const version = /^\s+version:\s*["']?([0-9]+\.[0-9]+\.[0-9]+)/m.exec(dist)?.[1];
  if (version === undefined) throw new Error(`cannot read dist.version from ${manifest}`);
  return version;
}

/** Where collectors/otelcol/build.sh puts the binary (whether or not it is there). */
export function otelcolBinaryPath(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.TRIPLINE_OTELCOL_BIN?.trim();
  if (explicit !== undefined && explicit !== '') return explicit;
  const cacheEnv = env.TRIPLINE_OTELCOL_CACHE?.trim();
  const cache =
    cacheEnv !== undefined && cacheEnv !== ''
      ? cacheEnv
      : join(env.HOME ?? homedir(), '.cache', 'tripline', `otelcol-${otelcolVersion()}`);
  return join(cache, BINARY_NAME);
}

/**
 * The collector binary, or an Error telling how to build it. Tests call this and let the error fail them:
 * CI builds the binary first (`.ci/run` runs collectors/otelcol/build.sh).
 */
export function otelcolBinary(env: NodeJS.ProcessEnv = process.env): string {
  const path = otelcolBinaryPath(env);
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(
      `The upstream OpenTelemetry Collector binary is missing (looked for ${path}).\n` +
        `Build it first:  bash ${OTELCOL_BUILD_SCRIPT}   (needs Go >= 1.25 and the Go module proxy; ~3 min the first time)\n` +
        `or point TRIPLINE_OTELCOL_BIN at an otelcol binary built from collectors/otelcol/builder.yaml.`,
    );
  }
  return path;
}

/**
 * The environment collectors/otelcol/config.yaml reads: brokers, the three span topics, the OTLP/HTTP
 * endpoint (and no gRPC listener clash: the gRPC endpoint is put on a port next to it unless given).
 */
export function otelcolCollectorEnv(options: {
  brokers: readonly string[];
  topics: { tool_call: string; data_access: string; privilege_change: string };
  otlpHttpEndpoint: string;
  otlpGrpcEndpoint?: string;
}): Record<string, string> {
  return {
    KAFKA_BROKERS: options.brokers.join(','),
    TRIPLINE_TOPIC_TOOL_CALLS: options.topics.tool_call,
    TRIPLINE_TOPIC_DATA_ACCESS: options.topics.data_access,
    TRIPLINE_TOPIC_PRIVILEGE_CHANGES: options.topics.privilege_change,
    OTLP_HTTP_ENDPOINT: options.otlpHttpEndpoint,
    ...(options.otlpGrpcEndpoint === undefined ? {} : { OTLP_GRPC_ENDPOINT: options.otlpGrpcEndpoint }),
  };
}

export interface OtelcolOptions {
  /** Collector config file. @default TRIPLINE_OTELCOL_CONFIG, else collectors/otelcol/config.yaml */
  config?: string;
  /** Environment for the config's `${env:…}` references (brokers, topics, endpoints); added to process.env. */
  env?: Record<string, string>;
  /** Port of the OTLP/HTTP receiver the config opens on 127.0.0.1 (the readiness check polls it). */
  otlpHttpPort: number;
  /** Extra `--config`/`--set` arguments (e.g. `--set=processors::batch::timeout=1s`). */
  extraArgs?: string[];
  /** Pin the collector to these CPUs (`taskset -c <cpus>`), e.g. '1'. */
  cpus?: string;
  /** Also write the log to this file. */
  logFile?: string;
  /** @default 60000 */
  readyTimeoutMs?: number;
  /** Grace period after SIGTERM before SIGKILL. @default 15000 */
  stopTimeoutMs?: number;
  /** Binary to run. @default otelcolBinary() */
  binary?: string;
}

export interface RunningOtelcol {
  /** Base URL of the OTLP/HTTP receiver (`…/v1/traces` is where spans go). */
  otlpUrl: string;
  /** Process id of the collector itself (taskset execs into it). */
  pid: number;
  child: ChildProcess;
  /** Everything the collector wrote to stdout and stderr so far (last 4 MiB). */
  log(): string;
  /** SIGTERM, then SIGKILL after the grace period; resolves with the exit code (null when killed). */
  stop(): Promise<number | null>;
}

const LOG_LIMIT = 4 * 1024 * 1024;

/** Answers true as soon as anything answers HTTP on the port (GET /v1/traces → 405 from the OTLP receiver). */
function answersHttp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/v1/traces', method: 'GET', timeout: 1000, agent: false },
      (res) => {
        res.resume();
        resolve(true);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Starts the collector and waits until its OTLP/HTTP port answers. */
export async function startOtelcol(options: OtelcolOptions): Promise<RunningOtelcol> {
  const binary = options.binary ?? otelcolBinary();
  const config = options.config ?? (process.env.TRIPLINE_OTELCOL_CONFIG?.trim() || OTELCOL_CONFIG);
  const args = [
    `--config=${config}`,
    // No internal telemetry server (:8888 by default) so that several collectors and tests can run at once.
    '--config=yaml:service::telemetry::metrics::level: none',
    ...(options.extraArgs ?? []),
  ];
  const [command, argv] =
    options.cpus === undefined ? [binary, args] : ['taskset', ['-c', options.cpus, binary, ...args]];
  const child = spawn(command, argv, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let file: WriteStream | undefined;
  if (options.logFile !== undefined) file = createWriteStream(options.logFile, { flags: 'a' });
  const append = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
    if (output.length > LOG_LIMIT) output = output.slice(-LOG_LIMIT / 2);
    file?.write(chunk);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      exitCode = code;
      file?.end();
      resolve(code);
    });
  });
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));
  // Never leave a collector behind when this process ends without stopping it.
  const reap = (): void => {
    if (exitCode === undefined) child.kill('SIGKILL');
  };
  process.once('exit', reap);
  void exited.then(() => process.removeListener('exit', reap));

  const stopTimeoutMs = options.stopTimeoutMs ?? 15_000;
  const stop = async (): Promise<number | null> => {
    if (exitCode !== undefined) return exitCode;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, stopTimeoutMs);
    });
    await Promise.race([exited, killed]);
    clearTimeout(timer);
    return exited;
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (spawnError !== undefined) throw new Error(`could not start ${command}: ${spawnError.message}`);
    if (exitCode !== undefined)
      throw new Error(`the collector exited with code ${String(exitCode)} before its OTLP port answered:\n${output}`);
    if (await answersHttp(options.otlpHttpPort)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `the collector's OTLP/HTTP port ${String(options.otlpHttpPort)} did not answer within ${String(options.readyTimeoutMs ?? 60_000)} ms:\n${output}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error('the collector has no pid');
  return { otlpUrl: `http://127.0.0.1:${String(options.otlpHttpPort)}`, pid, child, log: () => output, stop };
}
