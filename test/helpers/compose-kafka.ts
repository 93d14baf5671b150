/**
 * docker-compose.yml's Kafka broker without Docker: the `kafka` service's environment turned into the
 * server.properties the apache/kafka image writes from it (`KAFKA_A_B` → `a.b`), its mounted files and
 * `KAFKA_OPTS`, run on Kafka's own jars (the test broker's, test/kafka/pom.xml), storage formatted with the
 * file's `CLUSTER_ID`. Only ports are mapped (9092, 9093, 9094 → free ports, the hostname `kafka` → 127.0.0.1),
 * and the image's `/opt/kafka/bin` tools are Kafka's own classes from those jars (`binDir`).
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePortPair } from './kafka-broker.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ComposeKafkaService {
  environment?: Record<string, string | number | boolean | null>;
  volumes?: (string | { source: string; target: string })[];
}

export interface ComposeKafka {
  /** Container port → host port (9092 clients, 9093 controller, 9094 the broker's own listener). */
  ports: Map<number, number>;
  /** The client listener (`kafka:9092`) as mapped. */
  brokers: string;
  /** Where the image's `/opt/kafka/bin` tools are (shell scripts running Kafka's classes). */
  binDir: string;
  process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** The jars test/kafka/broker.sh fetched (its cache). */
export function kafkaJars(): string {
  const version = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(
    readFileSync(join(ROOT, 'test/kafka/pom.xml'), 'utf8'),
  )?.[1];
  return process.env.TRIPLINE_KAFKA_CACHE ?? join(homedir(), '.cache', 'tripline', `kafka-${version ?? ''}`);
}

/** Container path → host path of a service's bind mounts. */
export function mountsOf(service: { volumes?: (string | { source: string; target: string })[] }): Map<string, string> {
  const mounts = new Map<string, string>();
  for (const volume of service.volumes ?? []) {
    if (typeof volume === 'string') {
      const [source, target] = volume.split(':');
      if (source !== undefined && target !== undefined) mounts.set(target, source);
    } else mounts.set(volume.target, volume.source);
  }
  return mounts;
}

/** The image's tools used by the file (health check, kafka-users job), as Kafka's own classes. */
function writeTools(binDir: string, jars: string): void {
  mkdirSync(binDir, { recursive: true });
  const tools = {
    'kafka-configs.sh': 'org.apache.kafka.tools.ConfigCommand',
    'kafka-broker-api-versions.sh': 'org.apache.kafka.tools.BrokerApiVersionsCommand',
  };
  for (const [name, main] of Object.entries(tools))
    writeFileSync(
      join(binDir, name),
      `#!/bin/bash\nexec java -Xmx128m -XX:TieredStopAtLevel=1 -cp '${jars}/*' ${main} "$@"\n`,
      { mode: 0o755 },
    );
}

function run(file: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({
        code: error === null ? 0 : typeof error.code === 'number' ? error.code : null,
        output: stdout + stderr,
      }),
    );
  });
}

export async function startComposeKafka(service: ComposeKafkaService, dir: string): Promise<ComposeKafka> {
  const jars = kafkaJars();
  const binDir = join(dir, 'bin');
  writeTools(binDir, jars);
  const first = await freePortPair();
  const ports = new Map<number, number>([
    [9092, first],
    [9093, first + 1],
    [9094, await freePortPair()],
  ]);
  const mapPorts = (text: string): string =>
    text
      .replace(
        /(^|[/@,])(kafka|localhost)?:(\d+)/g,
        (whole, before: string, host: string | undefined, port: string) => {
          const mapped = ports.get(Number(port));
          if (mapped === undefined) return whole;
          return `${before}${host === 'localhost' ? 'localhost' : '127.0.0.1'}:${mapped}`;
        },
      )
      .replace(/:\/\/:/g, '://127.0.0.1:');
  const mounts = mountsOf(service);
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(service.environment ?? {})) env[key] = value === null ? '' : String(value);
  const properties: string[] = [];
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith('KAFKA_') || key === 'KAFKA_OPTS' || key === 'KAFKA_HEAP_OPTS') continue;
    if (key.includes('__')) throw new Error(`${key}: the image's escapes (__, ___) are not mapped here`);
    const name = key.slice('KAFKA_'.length).toLowerCase().replaceAll('_', '.');
    properties.push(`${name}=${name === 'log.dirs' ? join(dir, 'data') : mapPorts(value)}`);
  }
  mkdirSync(join(dir, 'data'), { recursive: true });
  const config = join(dir, 'server.properties');
  writeFileSync(config, `${properties.join('\n')}\n`);
  const clusterId = env.CLUSTER_ID ?? '';
  const format = await run('java', [
    '-Xmx256m',
    '-cp',
    `${jars}/*`,
    'kafka.tools.StorageTool',
    'format',
    '-t',
    clusterId,
    '-c',
    config,
  ]);
  if (format.code !== 0) throw new Error(`formatting the compose Kafka failed:\n${format.output}`);
  const opts = (env.KAFKA_OPTS ?? '')
    .split(/\s+/)
    .filter((opt) => opt !== '')
    .map((opt) => opt.replace(/=(\/.+)$/, (whole, path: string) => `=${mounts.get(path) ?? path}`));
  const heap = (env.KAFKA_HEAP_OPTS ?? '-Xmx512m').split(/\s+/).filter((opt) => opt !== '');
  const log = openSync(join(dir, 'broker.log'), 'a');
  const child = spawn(
    'java',
    [...heap, ...opts, `-Dkafka.logs.dir=${dir}`, '-cp', `${jars}/*`, 'kafka.Kafka', config],
    { stdio: ['ignore', log, log] },
  );
  closeSync(log);
  const reap = (): void => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  process.once('exit', reap);
  return {
    ports,
    brokers: `127.0.0.1:${String(ports.get(9092))}`,
    binDir,
    process: child,
    output: () => readFileSync(join(dir, 'broker.log'), 'utf8'),
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
      process.removeListener('exit', reap);
    },
  };
}
