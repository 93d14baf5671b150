/**
 * Tripline's Grafana dashboards as code. `node dashboards/src/generate.ts` writes them to dashboards/json/;
 * test/integration/dashboards.test.ts checks that the files match this source and runs every query against the
 * ClickHouse engine with data from a real pipeline run.
 *
 * Every query reads with FINAL (schemas/clickhouse/README.md), filters on the tenant variable (a variable reaches
 * SQL only as `decodeURLComponent('${name:percentencode}')`, see ./dashboards/common.ts), and uses the
 * plugin's macros: `$__timeFilter(col)`, `$__timeInterval(col)`, `$__interval_s()` (argument-less macros are
 * written with `()`, see macros.ts for why). The database is `tripline` (CLICKHOUSE_DATABASE's default).
 *
 * One module per dashboard in ./dashboards/ (fleet, task, kill-switch, baselines), with what they share in
 * ./dashboards/common.ts; this module lists them in the order they are generated.
 */
import type { DashboardSpec } from './grafana.ts';
import { baselines } from './dashboards/baselines.ts';
import { fleet } from './dashboards/fleet.ts';
import { killSwitch } from './dashboards/kill-switch.ts';
import { task } from './dashboards/task.ts';

export const DASHBOARDS: readonly DashboardSpec[] = [fleet, task, killSwitch, baselines];
