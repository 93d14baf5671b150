/**
 * The Grafana dashboards (dashboards/json, generated from dashboards/src) and their provisioning:
 * - the files match the generator (drift) and are dashboards Grafana's file provisioning accepts: uid, title,
 *   panels with a grid position, SQL targets, and data source references that resolve to the provisioned
 *   ClickHouse data source;
 * - the macro expansion used below agrees with the plugin's own test cases;
 * - EVERY panel query and template variable query, with the variables and the plugin's macros expanded the way
 *   Grafana and grafana-clickhouse-datasource expand them, runs on the ClickHouse engine (chdb) over data from a
 *   real pipeline run (startEmbedded, simulated OpenTelemetry SDK agents, an attack revoked by the detector, an
 *   attack on a shadow-mode task type, and a manual restore through the API), and returns the columns the panel
 *   reads and at least one row.
 */
import { createClient } from '@clickhouse/client';
import type { ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { runFleet } from '../../collectors/simulator/fleet.ts';
import { generateScenario } from '../../collectors/simulator/scenarios.ts';
import type { TaskPlan } from '../../collectors/simulator/scenarios.ts';
import { DASHBOARDS } from '../../dashboards/src/dashboards.ts';
import { driftedFiles, renderDashboards } from '../../dashboards/src/generate.ts';
import { DATASOURCE, GRID_WIDTH } from '../../dashboards/src/grafana.ts';
import type { DashboardJson, PanelJson, PanelNeeds } from '../../dashboards/src/grafana.ts';
import { MACROS, expandMacros, referencedVariables, renderQuery } from '../../dashboards/src/macros.ts';
import type { QueryContext } from '../../dashboards/src/macros.ts';
import { loadConfig } from '../../services/app/config.ts';
import { startEmbedded } from '../../services/app/embedded.ts';
import type { RunningTripline } from '../../services/app/embedded.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { waitFor } from '../helpers/wait.ts';
import { TEST_AGENT_TOKEN, TEST_AUTH_ENV, adminHeaders } from '../helpers/auth.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const JSON_DIR = join(ROOT, 'dashboards/json');

/** The one way a dashboard may put a variable into SQL: percent-encoded by Grafana, decoded by ClickHouse. */
const ESCAPED_VARIABLE = /decodeURLComponent\('\$\{\w+:percentencode\}'\)/g;

function readDashboards(): { file: string; json: DashboardJson }[] {
  return [...renderDashboards().keys()].map((file) => ({
    file,
    json: JSON.parse(readFileSync(join(JSON_DIR, file), 'utf8')) as DashboardJson,
  }));
}

function needsOf(uid: string, panelId: number): PanelNeeds | undefined {
  return DASHBOARDS.find((spec) => spec.json.uid === uid)?.needs.get(panelId);
}

/** Column names panel options refer to (field overrides by name). */
function overrideColumns(panel: PanelJson): string[] {
  return panel.fieldConfig.overrides.map((override) => override.matcher.options);
}

describe('dashboard files', () => {
  it('match the generator (run `node dashboards/src/generate.ts` after editing dashboards/src)', () => {
    expect(driftedFiles()).toEqual([]);
  });

  it('are Grafana dashboards with unique uids, titles, and panels on the grid', () => {
    const dashboards = readDashboards();
    expect(dashboards.map((d) => d.file).sort()).toEqual([
      'baselines.json',
      'fleet.json',
      'kill-switch.json',
      'task.json',
    ]);
    const uids = dashboards.map((d) => d.json.uid);
    expect(new Set(uids).size).toBe(uids.length);
    for (const { file, json } of dashboards) {
      expect(json.uid, file).toMatch(/^[A-Za-z0-9_-]{1,40}$/);
      expect(json.title, file).not.toBe('');
      expect(typeof json.schemaVersion, file).toBe('number');
      expect(json.time.from, file).not.toBe('');
      expect(json.panels.length, file).toBeGreaterThan(0);
      const ids = json.panels.map((panel) => panel.id);
      expect(new Set(ids).size, `${file}: panel ids are unique`).toBe(ids.length);
      const cells = new Set<string>();
      for (const panel of json.panels) {
        const { x, y, w, h } = panel.gridPos;
        const where = `${file} panel ${panel.id} "${panel.title}"`;
        expect(panel.title, where).not.toBe('');
        expect([x, y, w, h].every(Number.isInteger), where).toBe(true);
        expect(
          x >= 0 && y >= 0 && w >= 1 && h >= 1 && x + w <= GRID_WIDTH,
          `${where}: gridPos ${JSON.stringify(panel.gridPos)}`,
        ).toBe(true);
        for (let row = y; row < y + h; row += 1) {
          for (let column = x; column < x + w; column += 1) {
            const cell = `${row}:${column}`;
            expect(cells.has(cell), `${where} overlaps another panel at ${cell}`).toBe(false);
            cells.add(cell);
          }
        }
      }
    }
  });

  it('query only the provisioned ClickHouse data source, in SQL mode', () => {
    const provisioned = parseYaml(
      readFileSync(join(ROOT, 'dashboards/provisioning/datasources/clickhouse.yaml'), 'utf8'),
    ) as {
      apiVersion: number;
      datasources: { uid: string; type: string; name: string; jsonData: Record<string, unknown> }[];
    };
    expect(provisioned.apiVersion).toBe(1);
    expect(provisioned.datasources).toHaveLength(1);
    const source = provisioned.datasources[0];
    expect(source).toMatchObject({ uid: DATASOURCE.uid, type: 'grafana-clickhouse-datasource' });
    expect(source?.jsonData).toMatchObject({ protocol: 'native', port: 9000 });
    const reference = { type: source?.type, uid: source?.uid };

    for (const { file, json } of readDashboards()) {
      for (const variable of json.templating.list) {
        expect(variable.datasource, `${file} variable ${variable.name}`).toEqual(reference);
        expect(variable.query.rawSql, `${file} variable ${variable.name}`).not.toBe('');
      }
      for (const panel of json.panels) {
        const where = `${file} panel "${panel.title}"`;
        if (panel.type === 'text') {
          expect(panel.targets, where).toBeUndefined();
          continue;
        }
        expect(panel.datasource, where).toEqual(reference);
        expect(panel.targets?.length, where).toBe(1);
        for (const target of panel.targets ?? []) {
          expect(target.datasource, where).toEqual(reference);
          expect(target.editorType, where).toBe('sql');
          expect(target.format, where).toBe(target.queryType === 'timeseries' ? 0 : 1);
          expect(target.rawSql, where).toMatch(/FROM tripline\.\w+ (AS \w+ )?FINAL/);
        }
        expect(needsOf(json.uid, panel.id), `${where}: the generator declares what it needs`).toBeDefined();
      }
    }
  });

  it('define every variable their queries use, and link only to dashboards that exist', () => {
    const dashboards = readDashboards();
    const uids = new Set(dashboards.map((d) => d.json.uid));
    for (const { file, json } of dashboards) {
      const defined = new Set(json.templating.list.map((variable) => variable.name));
      const queries = [
        ...json.templating.list.map((variable) => variable.query.rawSql),
        ...json.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.rawSql)),
      ];
      for (const sql of queries) {
        for (const name of referencedVariables(sql))
          expect(defined.has(name), `${file} uses $${name} without defining it`).toBe(true);
        expect(/^[\x20-\x7e\n]*$/.test(sql), `${file}: the plugin parses SQL bytewise; keep it ASCII`).toBe(true);
      }
      for (const panel of json.panels) {
        for (const override of panel.fieldConfig.overrides) {
          for (const property of override.properties) {
            if (property.id !== 'links') continue;
            for (const link of property.value as { url: string }[]) {
              const uid = /^\/d\/([^/]+)\//.exec(link.url)?.[1];
              expect(uid !== undefined && uids.has(uid), `${file} "${panel.title}" links to ${link.url}`).toBe(true);
            }
          }
        }
      }
    }
  });

  it('interpolate every variable into SQL only percent-encoded and decoded by ClickHouse, never raw', () => {
    for (const { file, json } of readDashboards()) {
      const queries = [
        ...json.templating.list.map((variable) => variable.query.rawSql),
        ...json.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.rawSql)),
      ];
      for (const sql of queries) {
        const outside = referencedVariables(sql.replaceAll(ESCAPED_VARIABLE, ''));
        expect(outside, `${file}: variables outside decodeURLComponent('\${name:percentencode}'): ${sql}`).toEqual([]);
      }
    }
  });

  it('are loaded by the dashboard provider from the folder docker-compose.yml mounts', () => {
    const provider = parseYaml(
      readFileSync(join(ROOT, 'dashboards/provisioning/dashboards/tripline.yaml'), 'utf8'),
    ) as {
      apiVersion: number;
      providers: { type: string; options: { path: string } }[];
    };
    expect(provider.apiVersion).toBe(1);
    expect(provider.providers[0]).toMatchObject({
      type: 'file',
      options: { path: '/var/lib/grafana/dashboards/tripline' },
    });
    const compose = parseYaml(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: Record<string, { volumes?: string[] }>;
    };
    const volumes = compose.services.grafana?.volumes ?? [];
    expect(volumes).toContain(`./dashboards/json:${provider.providers[0]?.options.path ?? ''}:ro`);
    expect(volumes).toContain('./dashboards/provisioning/dashboards:/etc/grafana/provisioning/dashboards:ro');
    expect(volumes).toContain('./dashboards/provisioning/datasources:/etc/grafana/provisioning/datasources:ro');
  });
});

describe('macro expansion', () => {
  // The cases of the plugin's own test (grafana/clickhouse-datasource pkg/macros/macros_test.go, TestInterpolate),
  // plus the two macros the dashboards use that it does not cover.
  const context: QueryContext = {
    from: new Date('2014-11-12T11:45:26.123Z'),
    to: new Date('2015-11-12T11:45:26.456Z'),
    intervalMs: 20_000,
    variables: {},
  };
  const cases: [string, string][] = [
    [
      'select * from foo where $__timeFilter(cast(sth as timestamp))',
      'select * from foo where cast(sth as timestamp) >= toDateTime(1415792726) AND cast(sth as timestamp) <= toDateTime(1447328726)',
    ],
    [
      'select * from foo where $__timeFilter(cast(sth as timestamp) )',
      'select * from foo where cast(sth as timestamp) >= toDateTime(1415792726) AND cast(sth as timestamp) <= toDateTime(1447328726)',
    ],
    [
      'select * from foo where $__timeFilter_ms(cast(sth as timestamp))',
      'select * from foo where cast(sth as timestamp) >= fromUnixTimestamp64Milli(1415792726123) AND cast(sth as timestamp) <= fromUnixTimestamp64Milli(1447328726456)',
    ],
    [
      'select * from foo where ( date >= $__fromTime and date <= $__toTime ) limit 100',
      'select * from foo where ( date >= toDateTime(1415792726) and date <= toDateTime(1447328726) ) limit 100',
    ],
    [
      'select * from foo where ( date >= $__fromTime_ms ) and ( date <= $__toTime_ms ) limit 100',
      'select * from foo where ( date >= fromUnixTimestamp64Milli(1415792726123) ) and ( date <= fromUnixTimestamp64Milli(1447328726456) ) limit 100',
    ],
    ['select $__timeInterval(col) from foo', 'select toStartOfInterval(toDateTime(col), INTERVAL 20 second) from foo'],
    ['select count() / $__interval_s() from foo', 'select count() / 20 from foo'],
  ];
  it.each(cases)('%s', (input, output) => {
    expect(expandMacros(input, context)).toBe(output);
  });

  it('shows why argument-less macros need parentheses: without them they swallow text up to the next parenthesis', () => {
    expect(expandMacros('SELECT count() / $__interval_s AS rate FROM t WHERE x IN (1)', context)).toBe(
      'SELECT count() / 20',
    );
    // The backend tries macros in Go map order, which is random: once $__toTime has become toDateTime(...),
    // a bare $__fromTime before it takes that call's parentheses as its arguments.
    const bare = 'select * from foo where ( date >= $__fromTime and date <= $__toTime ) limit 100';
    expect(expandMacros(bare, context, ['toTime', 'fromTime'])).toBe(
      'select * from foo where ( date >= toDateTime(1415792726) ) limit 100',
    );
    const safe = 'select * from foo where ( date >= $__fromTime() and date <= $__toTime() ) limit 100';
    expect(expandMacros(safe, context, ['toTime', 'fromTime'])).toBe(
      expandMacros(safe, context, ['fromTime', 'toTime']),
    );
  });

  it('substitutes template variables the way the plugin formats them', () => {
    const sql = "WHERE a = '${one}' AND b IN (${many}) AND c = '$one' AND d = '[[one]]' AND e = '${unknown}'";
    expect(renderQuery(sql, { ...context, variables: { one: 'x', many: ['p', 'q'] } })).toBe(
      "WHERE a = 'x' AND b IN ('p','q') AND c = 'x' AND d = 'x' AND e = '${unknown}'",
    );
  });

  it('applies the explicit formats the way Grafana formats them', () => {
    const sql = "a = '${one:percentencode}' AND b = ${one:sqlstring} AND c IN (${many:sqlstring})";
    expect(renderQuery(sql, { ...context, variables: { one: "x' (y)\\", many: ['p', "q'"] } })).toBe(
      "a = 'x%27%20%28y%29%5C' AND b = 'x'' (y)\\' AND c IN ('p','q''')",
    );
    expect(() => renderQuery('${one:lucene}', { ...context, variables: { one: 'x' } })).toThrow(/lucene/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Every query on data from a real pipeline run.

const TYPES = ['summarize_ticket', 'triage_alert', 'generate_report'];
/** Its attack is scored in shadow mode: recorded as "would have revoked", not acted on. */
const SHADOW_TYPE = 'triage_alert';
const WARMUP = 6;

interface Seeded {
  rogue: TaskPlan;
  shadowRogue: TaskPlan;
  from: Date;
  to: Date;
}

async function getBody(url: string): Promise<unknown> {
  const response = await fetch(url, { headers: adminHeaders });
  return response.json();
}

async function seed(dataDir: string): Promise<Seeded> {
  const from = new Date(Date.now() - 3_600_000);
  const config = loadConfig({
    ...TEST_AUTH_ENV,
    TRIPLINE_DATA_DIR: dataDir,
    TRIPLINE_OTLP_HOST: '127.0.0.1',
    TRIPLINE_OTLP_PORT: '0',
    TRIPLINE_API_HOST: '127.0.0.1',
    TRIPLINE_API_PORT: '0',
    TRIPLINE_WARMUP_TASKS: String(WARMUP),
    TRIPLINE_TASK_TYPE_OVERRIDES: JSON.stringify({ [SHADOW_TYPE]: { shadow: true } }),
  });
  const running: RunningTripline = await startEmbedded(config, createLogger('warn'));
  const attack = (seedValue: number, taskType: string, agentId: string): TaskPlan => {
    const plan = generateScenario({
      seed: seedValue,
      benignPerType: 0,
      attacksPerPattern: 1,
      agentsPerType: 1,
      taskTypes: [taskType],
      patterns: ['exfiltration_burst'],
    }).tasks[0];
    if (plan === undefined) throw new Error('the scenario produced no attack');
    return { ...plan, agentId };
  };
  const rogue = attack(33, 'summarize_ticket', 'rogue-agent-1');
  const shadowRogue = attack(34, SHADOW_TYPE, 'rogue-agent-2');
  try {
    // The last type of a scenario starts late (a new type ramping up): listed last so the three warm up.
    const warmup = generateScenario({
      seed: 31,
      benignPerType: WARMUP + 2,
      attacksPerPattern: 0,
      agentsPerType: 2,
      taskTypes: [...TYPES, 'customer_refund'],
    }).tasks;
    await runFleet({ endpoint: running.otlpUrl, plans: warmup, token: TEST_AGENT_TOKEN });
    await waitFor(
      'the task types to warm up',
      async () => {
        const body = (await getBody(`${running.apiUrl}/v1/baselines`)) as {
          items: { taskType: string; tasks: number }[];
        };
        return TYPES.every((type) => (body.items.find((item) => item.taskType === type)?.tasks ?? 0) >= WARMUP);
      },
      60_000,
    );
    const mixed = generateScenario({
      seed: 32,
      benignPerType: 1,
      attacksPerPattern: 0,
      agentsPerType: 2,
      taskTypes: TYPES,
    }).tasks;
    await runFleet({ endpoint: running.otlpUrl, plans: [...mixed, rogue, shadowRogue], token: TEST_AGENT_TOKEN });

    await waitFor(
      'the rogue task to be revoked',
      async () =>
        ((await getBody(`${running.apiUrl}/v1/tasks/${rogue.taskId}`)) as { status?: string }).status === 'revoked',
    );
    await waitFor('the shadow-mode attack to be recorded', async () => {
      const body = (await getBody(`${running.apiUrl}/v1/alerts?task_id=${shadowRogue.taskId}`)) as {
        items: { shadow: boolean; decision: string }[];
      };
      return body.items.some((alert) => alert.shadow && alert.decision === 'revoke');
    });
    const restored = await fetch(`${running.apiUrl}/v1/tasks/${rogue.taskId}/restore`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...adminHeaders },
      body: JSON.stringify({ reason: 'reviewed: the export was approved', actor: 'alice@example.com' }),
    });
    expect(restored.status).toBe(201);

    const sent = [...warmup, ...mixed, rogue, shadowRogue].reduce(
      (sum, plan) => sum + plan.events.length + plan.afterEnd.length,
      0,
    );
    await waitFor('every event to be stored', async () => (await running.store.counts()).events === sent);
  } finally {
    await running.stop();
  }
  // Simulated agents run a clock ahead of the wall clock (planned gaps, not waits): leave room after now.
  return { rogue, shadowRogue, from, to: new Date(Date.now() + 3_600_000) };
}

describe('every dashboard query on ClickHouse, over a real pipeline run', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-dashboards-'));
  let seeded: Seeded;
  let client: ClickHouseClient;

  beforeAll(async () => {
    seeded = await seed(dataDir);
    // The pipeline has stopped and closed its store; read the same data directory directly, as Grafana reads
    // the server (the Store port has no raw-SQL method, on purpose).
    client = createClient({ connection: createChdbConnection({ path: dataDir }) as never });
  }, 240_000);

  afterAll(async () => {
    await client.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const context = (): QueryContext => ({
    from: seeded.from,
    to: seeded.to,
    intervalMs: 60_000,
    variables: { tenant: 'default', task_id: seeded.rogue.taskId },
  });

  async function run(
    sql: string,
  ): Promise<{ meta: { name: string; type: string }[]; rows: number; data: Record<string, unknown>[] }> {
    const orders = [Object.keys(MACROS), Object.keys(MACROS).reverse(), Object.keys(MACROS).sort()];
    const rendered = orders.map((order) => renderQuery(sql, context(), order));
    expect(new Set(rendered).size, 'the expansion does not depend on the order macros are tried in').toBe(1);
    const query = rendered[0] ?? '';
    expect(query).not.toMatch(/\$__|\$\{|\[\[/);
    const result = await client.query({
      query,
      format: 'JSON',
      clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
    });
    const json = await result.json<Record<string, unknown>>();
    return { meta: json.meta ?? [], rows: json.rows ?? 0, data: json.data };
  }

  /** Rows are expected always, or when the table the panel depends on holds rows (written in this mode). */
  async function rowsExpected(needs: PanelNeeds): Promise<boolean> {
    if (needs.rows === 'always') return true;
    const table = needs.rows.whenTableHasRows;
    expect(table).toMatch(/^\w+$/);
    const result = await client.query({
      query: `SELECT count() AS n FROM tripline.${table} FINAL`,
      format: 'JSONEachRow',
      clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
    });
    const [row] = await result.json<{ n: number }>();
    if (row?.n === 0)
      console.warn(`tripline.${table} is empty after the pipeline run: its panels are checked for columns only`);
    return (row?.n ?? 0) > 0;
  }

  const dashboards = readDashboards();
  for (const { file, json } of dashboards) {
    describe(`${json.title} (${file})`, () => {
      for (const variable of json.templating.list) {
        it(`variable $${variable.name}`, async () => {
          const result = await run(variable.query.rawSql);
          expect(result.rows).toBeGreaterThan(0);
          const values = result.data.map((row) => Object.values(row)[0]);
          if (variable.name === 'task_id') expect(values).toContain(seeded.rogue.taskId);
          if (variable.name === 'tenant') expect(values).toContain('default');
        });
      }
      for (const panel of json.panels) {
        const needs = needsOf(json.uid, panel.id);
        if (panel.targets === undefined || needs === undefined) continue;
        it(`panel "${panel.title}"`, async () => {
          for (const target of panel.targets ?? []) {
            const result = await run(target.rawSql);
            const columns = result.meta.map((column) => column.name);
            for (const column of new Set([...needs.columns, ...overrideColumns(panel)])) {
              expect(columns, `"${panel.title}" reads column ${column}`).toContain(column);
            }
            if (needs.timeColumn !== undefined) {
              expect(result.meta[0]?.name, 'the time column comes first').toBe(needs.timeColumn);
              expect(result.meta[0]?.type, 'the time column has a time type').toMatch(/^DateTime/);
            }
            if (await rowsExpected(needs))
              expect(result.rows, `"${panel.title}" has rows over the seeded data`).toBeGreaterThan(0);
          }
        });
      }
    });
  }

  it('confine hostile variable values to a literal: every query answers as for an unknown value', async () => {
    // A variable's value comes from the URL. Each of these ends the literal under raw interpolation, and the
    // backslash one also under Grafana's sqlstring format (ClickHouse reads \' as an escaped quote).
    const hostile = ["' OR 1=1 OR tenant = '", "\\' OR 1=1 OR tenant = \\'", "x') OR (1=1"];
    const answer = async (sql: string, value: string): Promise<unknown> => {
      // The clock is not what is under test: "now" is the run's end, so two answers of a query agree.
      const query = renderQuery(sql, { ...context(), variables: { tenant: value, task_id: value } }).replace(
        /\bnow(?:64)?\(\d*\)/g,
        `toDateTime64(${String(seeded.to.getTime() / 1000)}, 3)`,
      );
      try {
        const result = await client.query({ query, format: 'JSON' });
        // As a multiset: a query without ORDER BY (a variable's DISTINCT list) may return its rows in any order.
        return (await result.json()).data.map((row) => JSON.stringify(row)).sort();
      } catch (error) {
        return `error: ${(error as Error).message.split('\n')[0] ?? ''}`;
      }
    };
    for (const { json } of dashboards) {
      const queries = [
        ...json.templating.list.map((variable) => variable.query.rawSql),
        ...json.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.rawSql)),
      ];
      for (const sql of queries) {
        const unknown = await answer(sql, 'no-such-value');
        for (const value of hostile) expect(await answer(sql, value), `${json.uid}, ${value}: ${sql}`).toEqual(unknown);
      }
    }
  });

  it('show what the run did: the revocation, the manual restore with its actor, and the shadow decision', async () => {
    const revocations = await run(
      `SELECT action, source, actor, reason FROM tripline.revocations FINAL WHERE task_id = '${seeded.rogue.taskId}' ORDER BY time`,
    );
    expect(revocations.data).toEqual([
      { action: 'revoke', source: 'detector', actor: 'tripline', reason: 'score reached the revoke threshold' },
      {
        action: 'restore',
        source: 'manual',
        actor: 'alice@example.com (via configured admin)',
        reason: 'reviewed: the export was approved',
      },
    ]);
    const shadow = await run(`SELECT task_id FROM tripline.alerts FINAL WHERE shadow AND decision = 'revoke'`);
    expect(shadow.data).toEqual([{ task_id: seeded.shadowRogue.taskId }]);
  });
});
