/**
 * docker-compose.yml, checked statically (no Docker engine runs on our machines):
 * - Debian's docker-compose (`apt-get install -y docker-compose`) accepts it (`config -q`); the test FAILS with
 *   a message saying what to install when docker-compose is missing, it never skips;
 * - every image is pinned to a version (a tag, never `latest`), and the versions agree with what the tests pin
 *   (Kafka of test/kafka/pom.xml, the collector of collectors/otelcol/builder.yaml, the Grafana plugin of the
 *   dashboards);
 * - every service another depends on has a health check, and dependents wait for it (`service_healthy`);
 * - Tripline's services are built from this repository, run the distributed entry points, and their ports and
 *   environment agree with the documented configuration (services/app/config.ts CONFIG_VARIABLES,
 *   services/bus/kafka/config.ts KAFKA_CONFIG_VARIABLES, services/app/distributed.ts roles): every variable is a
 *   known one, the values load, and the addresses point at the services that serve them.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { PLUGIN_VERSION } from '../../dashboards/src/grafana.ts';
import { KAFKA_CONFIG_VARIABLES, loadKafkaSettings } from '../../services/bus/kafka/config.ts';
import { CONFIG_VARIABLES, loadConfig } from '../../services/app/config.ts';
import { ROLES, readRoles } from '../../services/app/distributed.ts';
import { COMPOSE_SECRETS } from '../helpers/compose-env.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');

interface Healthcheck {
  test: string[] | string;
  interval?: string;
  timeout?: string;
  retries?: number;
}

interface Service {
  image?: string;
  build?: { context: string } | string;
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null>;
  ports?: ({ published: number | string; target: number } | string)[];
  volumes?: (string | { type: string; source: string; target: string; read_only?: boolean })[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: Healthcheck;
  profiles?: string[];
}

interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/**
 * Runs Debian's docker-compose on the file, with a clean environment plus what a deployment's .env supplies (the
 * secrets the file requires), so the file's defaults apply to everything else.
 */
function dockerCompose(
  args: string[],
  deployment: Readonly<Record<string, string>> = COMPOSE_SECRETS,
): { status: number; stdout: string; stderr: string } {
  const result = spawnSync('docker-compose', ['-f', COMPOSE_FILE, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...deployment },
    timeout: 60_000,
  });
  if (result.error !== undefined) {
    const code = (result.error as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? "docker-compose is not installed: the compose checks need it (no Docker engine needed). Install it with `apt-get install -y docker-compose` (Debian's 1.29.2)."
        : `docker-compose could not run: ${result.error.message}`,
    );
  }
  return { status: result.status ?? 1, stdout: result.stdout, stderr: result.stderr };
}

/** Jobs that run once before the services (restart "no"): dependents wait for them to finish successfully. */
const ONE_SHOT_JOBS = ['kafka-users', 'kafka-acls'];

const TRIPLINE_VARIABLES = new Set<string>([
  ...CONFIG_VARIABLES.map(([name]) => name),
  ...KAFKA_CONFIG_VARIABLES.map(([name]) => name),
  'TRIPLINE_ROLES',
]);

/** The distributed entry point each Tripline role runs (services/app/*-main.ts). */
const ENTRY_POINTS: Record<string, string> = {
  gateway: 'services/app/gateway-main.ts',
  processor: 'services/app/processor-main.ts',
  api: 'services/app/api-main.ts',
};

function commandOf(service: Service): string[] {
  return typeof service.command === 'string' ? service.command.split(/\s+/) : (service.command ?? []);
}

function envOf(service: Service): Record<string, string> {
  return Object.fromEntries(
    Object.entries(service.environment ?? {}).map(([key, value]) => [key, value === null ? '' : String(value)]),
  );
}

function dependencies(service: Service): Record<string, { condition: string }> {
  const dependsOn = service.depends_on ?? {};
  return Array.isArray(dependsOn)
    ? Object.fromEntries(dependsOn.map((name) => [name, { condition: 'service_started' }]))
    : dependsOn;
}

function publishedPorts(service: Service): { published: number; target: number }[] {
  return (service.ports ?? []).map((port) => {
    if (typeof port === 'string') {
      const [published, target] = port.split(':').map(Number);
      return { published: published ?? NaN, target: target ?? NaN };
    }
    return { published: Number(port.published), target: port.target };
  });
}

function healthcheckText(service: Service): string {
  const test = service.healthcheck?.test;
  return Array.isArray(test) ? test.join(' ') : (test ?? '');
}

function tagOf(image: string): string | undefined {
  const lastSlash = image.lastIndexOf('/');
  const colon = image.indexOf(':', lastSlash + 1);
  return colon === -1 ? undefined : image.slice(colon + 1);
}

describe('docker-compose.yml', () => {
  let compose: Compose;
  let raw: Compose;

  beforeAll(() => {
    expect(existsSync(COMPOSE_FILE), 'docker-compose.yml is at the repository root').toBe(true);
    raw = parseYaml(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true }) as Compose;
    const check = dockerCompose(['config', '-q']);
    expect(check.status, `docker-compose config -q rejected the file:\n${check.stderr}`).toBe(0);
    const resolved = dockerCompose(['config']);
    expect(resolved.status, resolved.stderr).toBe(0);
    compose = parseYaml(resolved.stdout) as Compose;
  });

  it('is accepted by docker-compose config', () => {
    expect(Object.keys(compose.services).sort()).toEqual([
      'api',
      'clickhouse',
      'gateway',
      'grafana',
      'kafka',
      'kafka-acls',
      'kafka-users',
      'otel-collector',
      'processor-1',
      'processor-2',
    ]);
  });

  it('pins every image to a version', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      const image = service.image;
      expect(image, `${name} names its image (built services too, so the tag is pinned)`).toBeDefined();
      const tag = tagOf(image ?? '');
      expect(tag, `${name}: ${image ?? ''} has a tag`).toBeDefined();
      expect(tag, `${name}: ${image ?? ''} is not "latest"`).not.toMatch(/^latest$/i);
      expect(tag, `${name}: ${image ?? ''} is pinned to a version`).toMatch(/^v?\d+(\.\d+)+/);
    }
    for (const [name, service] of Object.entries(raw.services)) {
      expect(service.image, `${name} in the file itself (not only after interpolation)`).not.toMatch(/\$\{|:latest$/);
    }
  });

  it('runs the versions the tests pin: Kafka KRaft, ClickHouse 26, the collector, Grafana with the ClickHouse plugin', () => {
    const kafkaVersion = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(
      readFileSync(join(ROOT, 'test/kafka/pom.xml'), 'utf8'),
    )?.[1];
    expect(kafkaVersion).toBeDefined();
    expect(compose.services.kafka?.image).toBe(`apache/kafka:${kafkaVersion ?? ''}`);
    const kafkaEnv = envOf(compose.services.kafka ?? {});
    expect(kafkaEnv.KAFKA_PROCESS_ROLES, 'KRaft: the broker is its own controller').toBe('broker,controller');
    expect(kafkaEnv.CLUSTER_ID, 'a KRaft cluster id is 16 bytes, base64url').toMatch(/^[A-Za-z0-9_-]{22}$/);

    expect(compose.services.clickhouse?.image).toMatch(/^clickhouse\/clickhouse-server:26\.\d+/);

    const builderVersion = /^\s+version:\s*["']?([0-9.]+)/m.exec(
      readFileSync(join(ROOT, 'collectors/otelcol/builder.yaml'), 'utf8'),
    )?.[1];
    const collectorTag = tagOf(compose.services['otel-collector']?.image ?? '') ?? '';
    expect(compose.services['otel-collector']?.image).toMatch(/^otel\/opentelemetry-collector-contrib:/);
    expect(Number(collectorTag.split('.')[1]), 'collector contrib v0.141 or newer').toBeGreaterThanOrEqual(141);
    expect(collectorTag, 'the same collector version collectors/otelcol/builder.yaml builds for the tests').toBe(
      builderVersion,
    );

    expect(compose.services.grafana?.image).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+$/);
    expect(envOf(compose.services.grafana ?? {}).GF_PLUGINS_PREINSTALL_SYNC).toBe(
      `grafana-clickhouse-datasource@${PLUGIN_VERSION}`,
    );
  });

  it('gives every service another depends on a health check, and dependents wait for it', () => {
    const dependedOn = new Set<string>();
    for (const [name, service] of Object.entries(compose.services)) {
      for (const [dependency, { condition }] of Object.entries(dependencies(service))) {
        expect(Object.keys(compose.services), `${name} depends on ${dependency}, which exists`).toContain(dependency);
        // One-shot jobs (restart "no") are waited for until they finished; services until they are healthy.
        const job = ONE_SHOT_JOBS.includes(dependency);
        expect(condition, `${name} waits for ${dependency}`).toBe(
          job ? 'service_completed_successfully' : 'service_healthy',
        );
        if (!job) dependedOn.add(dependency);
      }
    }
    expect([...dependedOn].sort()).toEqual(['clickhouse', 'gateway', 'kafka']);
    for (const name of dependedOn) {
      const healthcheck = compose.services[name]?.healthcheck;
      expect(healthcheck, `${name} has a health check`).toBeDefined();
      expect(healthcheckText(compose.services[name] ?? {}), name).not.toBe('');
      expect(healthcheck?.retries ?? 0, `${name} retries its health check`).toBeGreaterThan(0);
    }
  });

  it('starts Kafka and ClickHouse before the Tripline roles, the gateway before the collector', () => {
    const waitsFor = (name: string): string[] => Object.keys(dependencies(compose.services[name] ?? {})).sort();
    expect(waitsFor('kafka-users')).toEqual(['kafka']);
    expect(waitsFor('kafka-acls')).toEqual(['kafka-users']);
    expect(waitsFor('gateway')).toEqual(['kafka', 'kafka-acls']);
    expect(waitsFor('processor-1')).toEqual(['clickhouse', 'gateway', 'kafka']);
    expect(waitsFor('processor-2')).toEqual(['clickhouse', 'gateway', 'kafka']);
    expect(waitsFor('api')).toEqual(['clickhouse', 'gateway', 'kafka']);
    expect(waitsFor('otel-collector')).toEqual(['gateway']);
    expect(waitsFor('grafana')).toEqual(['clickhouse']);
  });

  describe("Tripline's services", () => {
    const tripline = (): [string, Service][] =>
      Object.entries(compose.services).filter(
        ([name, service]) => service.image?.startsWith('tripline:') === true && !ONE_SHOT_JOBS.includes(name),
      );

    it('authenticate to Kafka each as its own role, whose ACLs the kafka-acls job makes as the Kafka administrator', () => {
      const kafkaEnv = envOf(compose.services.kafka ?? {});
      expect(kafkaEnv.KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND, 'nothing is allowed without an ACL').toBe('false');
      expect(kafkaEnv.KAFKA_AUTHORIZER_CLASS_NAME).toBe('org.apache.kafka.metadata.authorizer.StandardAuthorizer');
      expect(kafkaEnv.KAFKA_SASL_ENABLED_MECHANISMS).toBe('SCRAM-SHA-256');
      expect((raw.services.kafka?.volumes ?? []).map(String)).toContain(
        './deploy/kafka/broker-jaas.conf:/etc/kafka/tripline/broker-jaas.conf:ro',
      );
      expect(kafkaEnv.KAFKA_OPTS).toBe('-Djava.security.auth.login.config=/etc/kafka/tripline/broker-jaas.conf');
      // The only listener off the container's loopback is the authenticated one.
      for (const listener of kafkaEnv.KAFKA_LISTENERS?.split(',') ?? [])
        if (!/^SASL_PLAINTEXT:\/\//.test(listener)) expect(listener, 'loopback only').toMatch(/:\/\/localhost:\d+$/);
      const users = new Map<string, string>();
      for (const [name, service] of tripline()) {
        const config = loadConfig(envOf(service));
        expect(config.kafka.sasl?.mechanism, name).toBe('scram-sha-256');
        users.set(name, config.kafka.sasl?.username ?? '');
      }
      expect(new Set(users.values()).size, 'one Kafka user per role').toBe(3);
      expect(users.get('processor-1')).toBe(users.get('processor-2'));
      const acls = compose.services['kafka-acls'] ?? {};
      const command = commandOf(acls);
      expect(command.slice(0, 2)).toEqual(['node', 'scripts/kafka-acls.ts']);
      const flag = (role: string): string | undefined => command[command.indexOf(`--${role}`) + 1];
      expect(flag('gateway')).toBe(users.get('gateway'));
      expect(flag('processor')).toBe(users.get('processor-1'));
      expect(flag('api')).toBe(users.get('api'));
      const admin = loadConfig(envOf(acls)).kafka.sasl?.username ?? '';
      expect(kafkaEnv.KAFKA_SUPER_USERS?.split(';')).toContain(`User:${admin}`);
      const made = envOf(compose.services['kafka-users'] ?? {});
      expect([made.KAFKA_GATEWAY_USER, made.KAFKA_PROCESSOR_USER, made.KAFKA_API_USER, made.KAFKA_ADMIN_USER]).toEqual([
        users.get('gateway'),
        users.get('processor-1'),
        users.get('api'),
        admin,
      ]);
      expect(made.KAFKA_GATEWAY_PASSWORD).toBe(envOf(compose.services.gateway ?? {}).KAFKA_SASL_PASSWORD);
      expect(made.KAFKA_PROCESSOR_PASSWORD).toBe(envOf(compose.services['processor-1'] ?? {}).KAFKA_SASL_PASSWORD);
      expect(made.KAFKA_API_PASSWORD).toBe(envOf(compose.services.api ?? {}).KAFKA_SASL_PASSWORD);
      expect(made.KAFKA_ADMIN_PASSWORD).toBe(envOf(acls).KAFKA_SASL_PASSWORD);
      expect((raw.services['kafka-users']?.volumes ?? []).map(String)).toEqual([
        './deploy/kafka/kafka-users.sh:/tripline/kafka-users.sh:ro',
      ]);
    });

    it('are built from this repository with the Dockerfile, and run the distributed entry points', () => {
      const services = tripline();
      expect(services.map(([name]) => name).sort()).toEqual(['api', 'gateway', 'processor-1', 'processor-2']);
      const roles = new Set<string>();
      for (const [name, service] of services) {
        const context = typeof service.build === 'string' ? service.build : service.build?.context;
        expect(context, `${name} is built from the repository root`).toBe(ROOT.replace(/\/$/, ''));
        const command = commandOf(service);
        expect(command[0], name).toBe('node');
        const script = command[1] ?? '';
        const role = Object.entries(ENTRY_POINTS).find(([, path]) => path === script)?.[0];
        expect(role, `${name} runs one of ${Object.values(ENTRY_POINTS).join(', ')}`).toBeDefined();
        expect(existsSync(join(ROOT, script)), `${script} exists`).toBe(true);
        roles.add(role ?? '');
      }
      expect([...roles].sort()).toEqual([...ROLES].sort());
    });

    it('set only documented variables, with values the services accept', () => {
      for (const [name, service] of tripline()) {
        const env = envOf(service);
        for (const variable of Object.keys(env)) {
          expect(
            TRIPLINE_VARIABLES.has(variable),
            `${name} sets ${variable}, which is not in CONFIG_VARIABLES / KAFKA_CONFIG_VARIABLES / TRIPLINE_ROLES`,
          ).toBe(true);
        }
        const config = loadConfig(env);
        expect(config.kafka.brokers, `${name} runs the distributed mode`).toBeDefined();
        expect(() => loadKafkaSettings(config.kafka, env), name).not.toThrow();
        expect(() => readRoles(env), name).not.toThrow();
        expect(config.store.url, `${name} uses the ClickHouse server, not the embedded engine`).toBeDefined();
      }
    });

    it('point at the Kafka and ClickHouse services, with ClickHouse credentials that match', () => {
      const kafkaEnv = envOf(compose.services.kafka ?? {});
      const advertised = kafkaEnv.KAFKA_ADVERTISED_LISTENERS?.split(',') ?? [];
      const clickhouseEnv = envOf(compose.services.clickhouse ?? {});
      for (const [name, service] of tripline()) {
        const env = envOf(service);
        const config = loadConfig(env);
        for (const broker of config.kafka.brokers ?? []) {
          expect(
            advertised.map((listener) => listener.replace(/^\w+:\/\//, '')),
            `${name}: ${broker} is a listener Kafka advertises`,
          ).toContain(broker);
        }
        const url = new URL(config.store.url ?? '');
        expect(url.hostname, name).toBe('clickhouse');
        expect(url.port, `${name}: the ClickHouse HTTP port`).toBe('8123');
        expect(config.store.username, name).toBe(clickhouseEnv.CLICKHOUSE_USER);
        expect(config.store.password, name).toBe(clickhouseEnv.CLICKHOUSE_PASSWORD);
        expect(config.store.database, name).toBe(clickhouseEnv.CLICKHOUSE_DB);
      }
    });

    it('publish the ports the services listen on, and health-check those ports', () => {
      const gateway = compose.services.gateway ?? {};
      const gatewayConfig = loadConfig(envOf(gateway));
      expect(publishedPorts(gateway).map((port) => port.target)).toContain(gatewayConfig.otlp.port);
      expect(healthcheckText(gateway)).toContain(`:${gatewayConfig.otlp.port}/healthz`);
      expect(gatewayConfig.otlp.host).toBe('0.0.0.0');

      const api = compose.services.api ?? {};
      const apiConfig = loadConfig(envOf(api));
      expect(publishedPorts(api).map((port) => port.target)).toContain(apiConfig.api.port);
      expect(healthcheckText(api)).toContain(`:${apiConfig.api.port}/readyz`);
      expect(apiConfig.api.host).toBe('0.0.0.0');

      const hostPorts = Object.values(compose.services).flatMap((service) =>
        publishedPorts(service).map((port) => port.published),
      );
      expect(new Set(hostPorts).size, 'no two services publish the same host port').toBe(hostPorts.length);
    });
  });

  it('refuses to start without each secret: no default passwords, tokens or keys', () => {
    const none = dockerCompose(['config', '-q'], {});
    expect(none.status, 'docker-compose config without any secret').not.toBe(0);
    const { CLICKHOUSE_PASSWORD: _left, ...others } = COMPOSE_SECRETS;
    const one = dockerCompose(['config', '-q'], others);
    expect(one.status, 'docker-compose config without CLICKHOUSE_PASSWORD').not.toBe(0);
    expect(one.stderr, 'the refusal names the variable').toContain('set CLICKHOUSE_PASSWORD');
    // Every other secret is required the same way wherever the file reads it (docker-compose names only the
    // first missing one, so this is read from the file rather than tried one by one).
    const text = readFileSync(COMPOSE_FILE, 'utf8');
    for (const variable of Object.keys(COMPOSE_SECRETS)) {
      const uses = [...text.matchAll(new RegExp(`\\$\\{${variable}(:?[-?])?([^}]*)\\}`, 'g'))];
      expect(uses.length, `the file reads ${variable}`).toBeGreaterThan(0);
      for (const use of uses) expect(use[0], `${variable} is required where it is read`).toMatch(/^\$\{\w+:\?set /);
    }
    for (const [name, service] of Object.entries(raw.services)) {
      for (const [variable, value] of Object.entries(service.environment ?? {})) {
        if (!/PASSWORD|TOKEN|_KEY$|SECRET/.test(variable)) continue;
        expect(String(value), `${name}: ${variable} has no default`).not.toMatch(/:-[^}]/);
      }
    }
  });

  it('publishes no store or broker port: only the front doors (gateway, API, collector, Grafana)', () => {
    expect(publishedPorts(compose.services.clickhouse ?? {}), 'ClickHouse').toEqual([]);
    expect(publishedPorts(compose.services.kafka ?? {}), 'Kafka').toEqual([]);
    const kafkaEnv = envOf(compose.services.kafka ?? {});
    for (const listener of kafkaEnv.KAFKA_ADVERTISED_LISTENERS?.split(',') ?? [])
      expect(listener, 'Kafka advertises only the compose network and its own loopback').toMatch(
        /:\/\/(kafka|localhost):\d+$/,
      );
    const publishing = Object.entries(compose.services)
      .filter(([, service]) => publishedPorts(service).length > 0)
      .map(([name]) => name)
      .sort();
    expect(publishing).toEqual(['api', 'gateway', 'grafana', 'otel-collector']);
  });

  it('runs the upstream collector, an extra front door, only when asked', () => {
    expect(compose.services['otel-collector']?.profiles, 'the collector is in the opt-in profile').toEqual([
      'collector',
    ]);
    for (const [name, service] of Object.entries(compose.services))
      if (name !== 'otel-collector') expect(service.profiles, `${name} runs by default`).toBeUndefined();
  });

  it("gives Grafana a read-only ClickHouse user, limited to the dashboards' tables", () => {
    const grafanaEnv = envOf(compose.services.grafana ?? {});
    const clickhouseEnv = envOf(compose.services.clickhouse ?? {});
    expect(grafanaEnv.CLICKHOUSE_USER, "Grafana is not Tripline's ClickHouse user").not.toBe(
      clickhouseEnv.CLICKHOUSE_USER,
    );
    expect(grafanaEnv.CLICKHOUSE_USER).toBe(clickhouseEnv.GRAFANA_CLICKHOUSE_USER);
    expect(grafanaEnv.CLICKHOUSE_PASSWORD).toBe(clickhouseEnv.GRAFANA_CLICKHOUSE_PASSWORD);
    expect(grafanaEnv.CLICKHOUSE_PASSWORD).not.toBe(clickhouseEnv.CLICKHOUSE_PASSWORD);
    const script = 'dashboards/provisioning/clickhouse/grafana-reader.sh';
    expect((raw.services.clickhouse?.volumes ?? []).map(String)).toContain(
      `./${script}:/docker-entrypoint-initdb.d/grafana-reader.sh:ro`,
    );

    // The script as the image runs it at first start, with a `clickhouse` that records the SQL it is given.
    const bin = mkdtempSync(join(tmpdir(), 'tripline-fake-clickhouse-'));
    const recorded = join(bin, 'sql.txt');
    writeFileSync(
      join(bin, 'clickhouse'),
      `#!/bin/bash\nwhile [ $# -gt 0 ]; do if [ "$1" = --query ]; then printf '%s' "$2" > "${recorded}"; fi; shift; done\n`,
      { mode: 0o755 },
    );
    const run = spawnSync('bash', [join(ROOT, script)], {
      encoding: 'utf8',
      env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, ...clickhouseEnv },
    });
    expect(run.status, run.stderr).toBe(0);
    const sql = readFileSync(recorded, 'utf8');
    rmSync(bin, { recursive: true, force: true });
    const statements = sql
      .split(';')
      .map((statement) => statement.trim())
      .filter((statement) => statement !== '');
    const user = clickhouseEnv.GRAFANA_CLICKHOUSE_USER ?? '';
    const hash = createHash('sha256')
      .update(clickhouseEnv.GRAFANA_CLICKHOUSE_PASSWORD ?? '')
      .digest('hex');
    expect(statements[0]).toBe(
      `CREATE USER IF NOT EXISTS ${user} IDENTIFIED WITH sha256_hash BY '${hash}' SETTINGS readonly = 2`,
    );
    expect(sql, 'the password itself is not sent').not.toContain(clickhouseEnv.GRAFANA_CLICKHOUSE_PASSWORD);
    const database = clickhouseEnv.CLICKHOUSE_DB ?? '';
    const grants = statements.slice(1);
    for (const grant of grants) expect(grant).toMatch(new RegExp(`^GRANT SELECT ON ${database}\\.\\w+ TO ${user}$`));
    const granted = grants.map((grant) => /\.(\w+) TO/.exec(grant)?.[1]).sort();
    // Exactly the tables the dashboards query.
    const shown = new Set<string>();
    for (const file of readdirSync(join(ROOT, 'dashboards/json')))
      for (const match of readFileSync(join(ROOT, 'dashboards/json', file), 'utf8').matchAll(
        /\b(?:FROM|JOIN)\s+tripline\.(\w+)/g,
      ))
        shown.add(match[1] ?? '');
    expect(granted).toEqual([...shown].sort());
    expect(granted).not.toContain('access_tokens');
  });

  it('gives Grafana the provisioned data source settings and the dashboards', () => {
    const grafana = compose.services.grafana ?? {};
    const env = envOf(grafana);
    const clickhouseEnv = envOf(compose.services.clickhouse ?? {});
    const provisioning = readFileSync(join(ROOT, 'dashboards/provisioning/datasources/clickhouse.yaml'), 'utf8');
    for (const variable of provisioning.matchAll(/\$\{(\w+)\}/g)) {
      expect(env, `Grafana's environment sets ${variable[1] ?? ''} for the data source provisioning`).toHaveProperty(
        variable[1] ?? '',
      );
    }
    expect(env.CLICKHOUSE_HOST).toBe('clickhouse');
    expect(env.CLICKHOUSE_DATABASE).toBe(clickhouseEnv.CLICKHOUSE_DB);
    const mounts = (raw.services.grafana?.volumes ?? []).map(String);
    expect(mounts).toContain('./dashboards/provisioning/datasources:/etc/grafana/provisioning/datasources:ro');
    expect(mounts).toContain('./dashboards/provisioning/dashboards:/etc/grafana/provisioning/dashboards:ro');
    expect(mounts).toContain('./dashboards/json:/var/lib/grafana/dashboards/tripline:ro');
    expect(
      existsSync(
        join(ROOT, 'dashboards/json', (env.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH ?? '').split('/').pop() ?? ''),
      ),
    ).toBe(true);
  });

  it('runs the collector on collectors/otelcol/gateway.yaml, forwarding to the gateway, with every variable it reads', () => {
    const collector = raw.services['otel-collector'] ?? {};
    const mounts = (collector.volumes ?? []).map(String);
    const mount = mounts.find((volume) => volume.startsWith('./collectors/otelcol/gateway.yaml:'));
    expect(mount, 'the collector mounts collectors/otelcol/gateway.yaml').toBeDefined();
    const target = mount?.split(':')[1] ?? '';
    expect(commandOf(compose.services['otel-collector'] ?? {})).toContain(`--config=${target}`);
    const env = envOf(compose.services['otel-collector'] ?? {});
    // It forwards to the gateway's OTLP/HTTP port, not to Kafka, and has no Kafka setting.
    const gatewayEnv = envOf(compose.services.gateway ?? {});
    expect(env.TRIPLINE_GATEWAY_URL).toBe(`http://gateway:${gatewayEnv.TRIPLINE_OTLP_PORT ?? ''}`);
    expect(Object.keys(env).filter((name) => name.startsWith('KAFKA_'))).toEqual([]);
    // The token it forwards with comes from the deployment (no default token); the agents' tokens from a file.
    expect(String(collector.environment?.TRIPLINE_COLLECTOR_TOKEN)).toBe('${TRIPLINE_COLLECTOR_TOKEN:-}');
    const tokensMount = mounts.find((volume) => volume.includes(`:${env.TRIPLINE_COLLECTOR_AGENT_TOKENS_FILE ?? ''}:`));
    expect(tokensMount, "the agents' tokens file is mounted, read-only, where the collector reads it").toMatch(/:ro$/);
    const targets = publishedPorts(compose.services['otel-collector'] ?? {}).map((port) => port.target);
    expect(targets, 'the collector publishes the port of its OTLP/HTTP receiver').toEqual([
      Number(env.OTLP_HTTP_ENDPOINT?.split(':').pop()),
    ]);
    const configFile = join(ROOT, 'collectors/otelcol/gateway.yaml');
    expect(existsSync(configFile), 'collectors/otelcol/gateway.yaml exists').toBe(true);
    const config = readFileSync(configFile, 'utf8');
    for (const match of config.matchAll(/\$\{(?:env:)?(\w+)(:-[^}]*)?\}/g)) {
      const [, name, fallback] = match;
      if (fallback === undefined)
        expect(env, `the collector's environment sets ${name ?? ''}`).toHaveProperty(name ?? '');
    }
    // Every receiver requires a token (test/integration/auth/collector-auth.test.ts runs it).
    const parsed = parseYaml(config) as {
      receivers: Record<string, { protocols: Record<string, { auth?: { authenticator?: string } }> }>;
    };
    for (const [name, receiver] of Object.entries(parsed.receivers))
      for (const [protocol, settings] of Object.entries(receiver.protocols))
        expect(settings.auth?.authenticator, `${name}/${protocol} requires a bearer token`).toMatch(/^bearertokenauth/);
  });

  it('has a Dockerfile on a pinned Node 24 that installs production dependencies only', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const from = /^FROM\s+(\S+)/m.exec(dockerfile)?.[1] ?? '';
    expect(from).toMatch(/^node:24\.\d+\.\d+-[a-z]+(-slim)?$/);
    expect(dockerfile).toMatch(/RUN npm ci --omit=dev/);
    expect(dockerfile).toMatch(/CMD \["node", "services\/app\/main\.ts"\]/);
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((line) => line.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'data', '.git']));
    const engines = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } })
      .engines.node;
    const floor = /(\d+)\.(\d+)\.(\d+)/.exec(engines)?.slice(1).map(Number) ?? [];
    const image = /node:(\d+)\.(\d+)\.(\d+)/.exec(from)?.slice(1).map(Number) ?? [];
    const atLeast =
      (image[0] ?? 0) * 1e6 + (image[1] ?? 0) * 1e3 + (image[2] ?? 0) >=
      (floor[0] ?? 0) * 1e6 + (floor[1] ?? 0) * 1e3 + (floor[2] ?? 0);
    expect(atLeast, `${from} satisfies package.json engines.node ${engines}`).toBe(true);
  });
});
