import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, loadConfig } from '../../services/app/config.ts';
import { KAFKA_CONFIG_VARIABLES } from '../../services/bus/kafka/config.ts';
import { MCP_GATEWAY_VARIABLES } from '../../services/mcp-gateway/config.ts';
import { ROLE_VARIABLE } from '../../services/app/distributed.ts';
import { ERRORS, TriplineError } from '../../services/shared/errors.ts';

function configError(env: Record<string, string>): TriplineError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof TriplineError) return error;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be rejected`);
}

describe('configuration', () => {
  it('has documented defaults', () => {
    const config = loadConfig({});
    expect(config.otlp.port).toBe(4318);
    expect(config.api.port).toBe(8080);
    expect(config.store.dataDir).toMatch(/\/data$/);
    expect(config.store.url).toBeUndefined();
    expect(config.kafka.brokers).toBeUndefined();
    expect(config.detector).toMatchObject({ warmupTasks: 20, alertThreshold: 50, revokeThreshold: 80, shadow: false });
    expect(Object.isFrozen(config.detector)).toBe(true);
    expect(config.shutdownGraceMs).toBe(30_000);
    expect(loadConfig({ TRIPLINE_SHUTDOWN_GRACE_MS: '5000' }).shutdownGraceMs).toBe(5000);
  });

  it.each([
    ['TRIPLINE_OTLP_PORT', 'http'],
    ['TRIPLINE_API_PORT', '70000'],
    ['TRIPLINE_WARMUP_TASKS', '0'],
    ['TRIPLINE_ALERT_THRESHOLD', '101'],
    ['TRIPLINE_SHADOW', 'maybe'],
    ['LOG_LEVEL', 'loud'],
    ['TRIPLINE_SHUTDOWN_GRACE_MS', '999'],
    ['TRIPLINE_SHUTDOWN_GRACE_MS', 'soon'],
    ['CLICKHOUSE_URL', 'ftp://x'],
    ['CLICKHOUSE_DATABASE', 'drop table'],
    ['TRIPLINE_TASK_TYPE_OVERRIDES', '{"a":{"revokeThreshold":900}}'],
    ['TRIPLINE_TASK_TYPE_OVERRIDES', 'not json'],
  ])('rejects %s=%s with a message that names the variable', (name, value) => {
    const error = configError({ [name]: value });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain(name);
  });

  it('rejects a revoke threshold below the alert threshold', () => {
    expect(configError({ TRIPLINE_ALERT_THRESHOLD: '70', TRIPLINE_REVOKE_THRESHOLD: '60' }).message).toContain(
      'TRIPLINE_REVOKE_THRESHOLD',
    );
  });

  it('parses lists, booleans and per-type overrides', () => {
    const config = loadConfig({
      KAFKA_BROKERS: 'a:9092, b:9092',
      TRIPLINE_SHADOW: 'yes',
      TRIPLINE_TASK_TYPE_OVERRIDES: '{"triage_alert":{"shadow":true,"revokeThreshold":90}}',
    });
    expect(config.kafka.brokers).toEqual(['a:9092', 'b:9092']);
    expect(config.detector.shadow).toBe(true);
    expect(config.detector.perTaskType.triage_alert).toEqual({ shadow: true, revokeThreshold: 90 });
  });

  it('stops start-up with the variable named and exit code 2', () => {
    const result = spawnSync(process.execPath, ['services/app/main.ts'], {
      env: { ...process.env, TRIPLINE_API_PORT: 'eighty' },
      encoding: 'utf8',
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('TRIPLINE_API_PORT="eighty" is invalid');
  });

  it('documents every variable in the README', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const [name] of [...CONFIG_VARIABLES, ...MCP_GATEWAY_VARIABLES, ...KAFKA_CONFIG_VARIABLES, ROLE_VARIABLE])
      expect(readme, `README lacks ${name}`).toContain(`\`${name}\``);
  });

  it('documents every error code', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    for (const code of Object.keys(ERRORS)) expect(doc, `docs/errors.md lacks ${code}`).toContain(`\`${code}\``);
  });
});
