/**
 * The Grafana dashboard JSON the builder (./grafana.ts) emits: the data source, plugin version and schema
 * version it pins, and the shapes of the dashboard, panel, query and variable JSON.
 */

/** The provisioned data source (dashboards/provisioning/datasources/clickhouse.yaml). */
export const DATASOURCE = { type: 'grafana-clickhouse-datasource', uid: 'tripline-clickhouse' } as const;
export type DataSourceRef = typeof DATASOURCE;

/** The plugin version the dashboards and docker-compose.yml pin (GF_PLUGINS_PREINSTALL_SYNC). */
export const PLUGIN_VERSION = '4.13.0';

/** Grafana's dashboard JSON schema version these dashboards are written in (Grafana 12.x). */
export const SCHEMA_VERSION = 41;

/** Grid width of a dashboard. */
export const GRID_WIDTH = 24;

export interface GridPos {
  x: number;
  y: number;
  w: number;
  h: number;
}

/**
 * One SQL query of the ClickHouse plugin. `format` is what the backend (sqlds) reads: 0 time series (long frames
 * are pivoted to one series per label), 1 table.
 */
export interface SqlTarget {
  refId: string;
  datasource: DataSourceRef;
  editorType: 'sql';
  queryType: 'table' | 'timeseries';
  format: 0 | 1;
  pluginVersion: string;
  rawSql: string;
}

export interface FieldOverride {
  matcher: { id: 'byName'; options: string };
  properties: { id: string; value: unknown }[];
}

export interface PanelJson {
  id: number;
  type: 'stat' | 'timeseries' | 'table' | 'barchart' | 'bargauge' | 'text';
  title: string;
  description: string;
  gridPos: GridPos;
  datasource?: DataSourceRef;
  targets?: SqlTarget[];
  fieldConfig: { defaults: Record<string, unknown>; overrides: FieldOverride[] };
  options: Record<string, unknown>;
  transformations?: { id: string; options: Record<string, unknown> }[];
}

export interface VariableJson {
  name: string;
  label: string;
  description: string;
  type: 'query';
  datasource: DataSourceRef;
  /** The plugin's variable query model (CHVariableQuery): Custom SQL. */
  query: { refId: string; queryType: 'sql'; rawSql: string };
  definition: string;
  refresh: 1 | 2;
  sort: 0;
  multi: false;
  includeAll: false;
  allowCustomValue: true;
  current: { text: string; value: string };
  options: never[];
  hide: 0;
}

export interface DashboardJson {
  uid: string;
  title: string;
  description: string;
  tags: string[];
  timezone: 'utc';
  editable: boolean;
  graphTooltip: 1;
  schemaVersion: number;
  version: 1;
  refresh: string;
  time: { from: string; to: string };
  timepicker: Record<string, never>;
  fiscalYearStartMonth: 0;
  liveNow: false;
  weekStart: '';
  links: {
    title: string;
    type: 'dashboards';
    tags: string[];
    asDropdown: boolean;
    includeVars: boolean;
    keepTime: boolean;
    icon: 'external link';
    targetBlank: false;
    tooltip: '';
    url: '';
  }[];
  annotations: { list: Record<string, unknown>[] };
  templating: { list: VariableJson[] };
  panels: PanelJson[];
}
