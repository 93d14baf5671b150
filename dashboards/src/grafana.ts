/**
 * A small typed builder for Grafana dashboard JSON (schema v1, the format file provisioning loads) with panels
 * that query ClickHouse through the official `grafana-clickhouse-datasource` plugin in SQL mode.
 *
 * Only what Tripline's dashboards use is modelled. Every panel carries, besides its Grafana JSON, the columns
 * it needs from its query (`needs`): the generator drops them, the dashboards test runs each query against the
 * ClickHouse engine and checks that the columns come back.
 */
import { DATASOURCE, GRID_WIDTH, PLUGIN_VERSION, SCHEMA_VERSION } from './grafana-json.ts';
import type { DashboardJson, FieldOverride, PanelJson, SqlTarget, VariableJson } from './grafana-json.ts';

export { DATASOURCE, GRID_WIDTH, PLUGIN_VERSION, SCHEMA_VERSION } from './grafana-json.ts';
export type {
  DashboardJson,
  DataSourceRef,
  FieldOverride,
  GridPos,
  PanelJson,
  SqlTarget,
  VariableJson,
} from './grafana-json.ts';

/** What the dashboards test checks for one panel: the columns its query must return. */
export interface PanelNeeds {
  /** Columns the panel reads (by name): fields it shows, overrides and links name. */
  columns: readonly string[];
  /** The first column is the time axis (time series panels). */
  timeColumn?: string;
  /**
   * The query returns rows over the seeded data of the test (a real pipeline run): always, or only when the
   * named table holds rows (tables another part of Tripline may not write in every mode).
   */
  rows: 'always' | { whenTableHasRows: string };
}

export interface PanelSpec {
  json: Omit<PanelJson, 'id' | 'gridPos'>;
  size: { w: number; h: number };
  needs: PanelNeeds | undefined;
}

export interface DashboardSpec {
  file: string;
  json: DashboardJson;
  /** By panel id. */
  needs: ReadonlyMap<number, PanelNeeds>;
}

function target(rawSql: string, queryType: SqlTarget['queryType']): SqlTarget {
  return {
    refId: 'A',
    datasource: DATASOURCE,
    editorType: 'sql',
    queryType,
    format: queryType === 'timeseries' ? 0 : 1,
    pluginVersion: PLUGIN_VERSION,
    rawSql: sqlText(rawSql),
  };
}

/** Dedents a SQL template literal and trims it, so the JSON reads like the source. */
export function sqlText(sql: string): string {
  const lines = sql.replace(/^\n/, '').replace(/\s+$/, '').split('\n');
  const indent = Math.min(
    ...lines.filter((line) => line.trim() !== '').map((line) => /^ */.exec(line)?.[0].length ?? 0),
  );
  return lines.map((line) => line.slice(indent)).join('\n');
}

export interface Link {
  title: string;
  url: string;
}

export interface ColumnOptions {
  unit?: string;
  width?: number;
  /** Colored cell background by thresholds (scores). */
  colorByScore?: boolean;
  links?: Link[];
  /** Text shown instead of values: value → text and color. */
  mappings?: Record<string, { text: string; color: string }>;
  displayName?: string;
}

function overridesFor(columns: Readonly<Record<string, ColumnOptions>>): FieldOverride[] {
  return Object.entries(columns).map(([name, options]) => {
    const properties: FieldOverride['properties'] = [];
    if (options.displayName !== undefined) properties.push({ id: 'displayName', value: options.displayName });
    if (options.unit !== undefined) properties.push({ id: 'unit', value: options.unit });
    if (options.width !== undefined) properties.push({ id: 'custom.width', value: options.width });
    if (options.colorByScore === true) {
      properties.push({ id: 'thresholds', value: SCORE_THRESHOLDS });
      properties.push({ id: 'custom.cellOptions', value: { type: 'color-background', mode: 'basic' } });
      properties.push({ id: 'decimals', value: 0 });
    }
    if (options.links !== undefined) properties.push({ id: 'links', value: options.links });
    if (options.mappings !== undefined) {
      properties.push({ id: 'mappings', value: [{ type: 'value', options: valueMappings(options.mappings) }] });
      properties.push({ id: 'custom.cellOptions', value: { type: 'color-text' } });
    }
    return { matcher: { id: 'byName', options: name }, properties };
  });
}

function valueMappings(mappings: Record<string, { text: string; color: string }>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let index = 0;
  for (const [value, { text, color }] of Object.entries(mappings)) {
    out[value] = { text, color, index };
    index += 1;
  }
  return out;
}

/** Green below the alert threshold (50), orange to the revoke threshold (80), red above: the defaults. */
export const SCORE_THRESHOLDS = {
  mode: 'absolute',
  steps: [
    { color: 'green', value: null },
    { color: 'orange', value: 50 },
    { color: 'red', value: 80 },
  ],
} as const;

const NEUTRAL_THRESHOLDS = { mode: 'absolute', steps: [{ color: 'text', value: null }] } as const;

export interface TableOptions {
  size: { w: number; h: number };
  columns?: Record<string, ColumnOptions>;
  needs: readonly string[];
  rows?: PanelNeeds['rows'];
  sortBy?: { displayName: string; desc: boolean }[];
}

export function table(title: string, description: string, sql: string, options: TableOptions): PanelSpec {
  return {
    size: options.size,
    json: {
      type: 'table',
      title,
      description,
      datasource: DATASOURCE,
      targets: [target(sql, 'table')],
      fieldConfig: {
        defaults: {
          custom: { align: 'auto', cellOptions: { type: 'auto' }, inspect: true, filterable: true },
          thresholds: NEUTRAL_THRESHOLDS,
          color: { mode: 'thresholds' },
          mappings: [],
        },
        overrides: overridesFor(options.columns ?? {}),
      },
      options: {
        showHeader: true,
        cellHeight: 'sm',
        footer: { show: false, reducer: ['sum'], countRows: false, fields: '' },
        ...(options.sortBy === undefined ? {} : { sortBy: options.sortBy }),
      },
    },
    needs: { columns: options.needs, rows: options.rows ?? 'always' },
  };
}

export interface TimeseriesOptions {
  size: { w: number; h: number };
  unit?: string;
  /** bars for counts per interval, lines for rates, points for per-event values. */
  style: 'bars' | 'lines' | 'points';
  stack?: boolean;
  /** Horizontal lines at the score thresholds. */
  scoreThresholds?: boolean;
  min?: number;
  max?: number;
  timeColumn: string;
  needs: readonly string[];
  rows?: PanelNeeds['rows'];
}

export function timeseries(title: string, description: string, sql: string, options: TimeseriesOptions): PanelSpec {
  const drawStyle = options.style === 'bars' ? 'bars' : options.style === 'points' ? 'points' : 'line';
  return {
    size: options.size,
    json: {
      type: 'timeseries',
      title,
      description,
      datasource: DATASOURCE,
      targets: [target(sql, 'timeseries')],
      fieldConfig: {
        defaults: {
          unit: options.unit ?? 'short',
          ...(options.min === undefined ? {} : { min: options.min }),
          ...(options.max === undefined ? {} : { max: options.max }),
          color: { mode: 'palette-classic' },
          thresholds: options.scoreThresholds === true ? SCORE_THRESHOLDS : NEUTRAL_THRESHOLDS,
          custom: {
            drawStyle,
            lineWidth: options.style === 'lines' ? 2 : 1,
            fillOpacity: options.style === 'bars' ? 80 : 12,
            pointSize: options.style === 'points' ? 7 : 4,
            showPoints: options.style === 'points' ? 'always' : 'never',
            spanNulls: false,
            stacking: { mode: options.stack === true ? 'normal' : 'none', group: 'A' },
            axisSoftMin: 0,
            thresholdsStyle: { mode: options.scoreThresholds === true ? 'dashed' : 'off' },
          },
        },
        overrides: [],
      },
      options: {
        legend: { showLegend: true, displayMode: 'list', placement: 'bottom', calcs: [] },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
    },
    needs: { columns: options.needs, timeColumn: options.timeColumn, rows: options.rows ?? 'always' },
  };
}

export interface StatOptions {
  size: { w: number; h: number };
  unit?: string;
  /** Color by score thresholds; otherwise by `thresholds`, otherwise a fixed color. */
  colorByScore?: boolean;
  thresholds?: { color: string; value: number | null }[];
  color?: string;
  /** Text values (status, decision) rather than numbers. */
  text?: boolean;
  needs: readonly string[];
  rows?: PanelNeeds['rows'];
  mappings?: Record<string, { text: string; color: string }>;
}

export function stat(title: string, description: string, sql: string, options: StatOptions): PanelSpec {
  const thresholds =
    options.colorByScore === true
      ? SCORE_THRESHOLDS
      : { mode: 'absolute', steps: options.thresholds ?? [{ color: options.color ?? 'blue', value: null }] };
  return {
    size: options.size,
    json: {
      type: 'stat',
      title,
      description,
      datasource: DATASOURCE,
      targets: [target(sql, 'table')],
      fieldConfig: {
        defaults: {
          unit: options.unit ?? 'short',
          color: { mode: 'thresholds' },
          thresholds,
          mappings: options.mappings === undefined ? [] : [{ type: 'value', options: valueMappings(options.mappings) }],
        },
        overrides: [],
      },
      options: {
        reduceOptions: { values: false, calcs: ['lastNotNull'], fields: options.text === true ? '/.*/' : '' },
        orientation: 'auto',
        textMode: 'value_and_name',
        colorMode: options.text === true ? 'value' : 'background',
        graphMode: 'none',
        justifyMode: 'center',
        wideLayout: true,
        showPercentChange: false,
      },
    },
    needs: { columns: options.needs, rows: options.rows ?? 'always' },
  };
}

export interface BarGaugeOptions {
  size: { w: number; h: number };
  unit?: string;
  needs: readonly string[];
  rows?: PanelNeeds['rows'];
}

/** One bar per row: the first string column names it, the numeric column sizes it. */
export function barGauge(title: string, description: string, sql: string, options: BarGaugeOptions): PanelSpec {
  return {
    size: options.size,
    json: {
      type: 'bargauge',
      title,
      description,
      datasource: DATASOURCE,
      targets: [target(sql, 'table')],
      fieldConfig: {
        defaults: {
          unit: options.unit ?? 'short',
          min: 0,
          color: { mode: 'continuous-BlPu' },
          thresholds: NEUTRAL_THRESHOLDS,
        },
        overrides: [],
      },
      options: {
        reduceOptions: { values: true, calcs: ['lastNotNull'], fields: '' },
        orientation: 'horizontal',
        displayMode: 'gradient',
        valueMode: 'color',
        showUnfilled: true,
        namePlacement: 'left',
        sizing: 'auto',
        minVizHeight: 16,
        maxVizHeight: 32,
      },
    },
    needs: { columns: options.needs, rows: options.rows ?? 'always' },
  };
}

/** A markdown note (no query). */
export function note(title: string, markdown: string, size: { w: number; h: number }): PanelSpec {
  return {
    size,
    json: {
      type: 'text',
      title,
      description: '',
      fieldConfig: { defaults: {}, overrides: [] },
      options: { mode: 'markdown', content: markdown },
    },
    needs: undefined,
  };
}

export interface VariableOptions {
  name: string;
  label: string;
  description: string;
  sql: string;
  current: string;
  /** 1 on dashboard load, 2 on time range change too. */
  refresh?: 1 | 2;
}

export function variable(options: VariableOptions): VariableJson {
  const rawSql = sqlText(options.sql);
  return {
    name: options.name,
    label: options.label,
    description: options.description,
    type: 'query',
    datasource: DATASOURCE,
    query: { refId: 'var', queryType: 'sql', rawSql },
    definition: rawSql,
    refresh: options.refresh ?? 1,
    sort: 0,
    multi: false,
    includeAll: false,
    allowCustomValue: true,
    current: { text: options.current, value: options.current },
    options: [],
    hide: 0,
  };
}

export interface DashboardOptions {
  file: string;
  uid: string;
  title: string;
  description: string;
  tags?: string[];
  time?: { from: string; to: string };
  refresh?: string;
  variables: VariableJson[];
  /** Panels in reading order; each row of the grid is filled left to right. */
  panels: PanelSpec[];
}

/**
 * Lays the panels out left to right, starting a new grid row when the next panel does not fit; a row is as tall
 * as its tallest panel. Panel ids are 1, 2, 3… in reading order.
 */
export function dashboard(options: DashboardOptions): DashboardSpec {
  const panels: PanelJson[] = [];
  const needs = new Map<number, PanelNeeds>();
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  for (const [index, spec] of options.panels.entries()) {
    const { w, h } = spec.size;
    if (w < 1 || w > GRID_WIDTH || h < 1) throw new Error(`panel "${spec.json.title}" has a bad size ${w}x${h}`);
    if (x + w > GRID_WIDTH) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    const id = index + 1;
    panels.push({ id, gridPos: { x, y, w, h }, ...spec.json });
    if (spec.needs !== undefined) needs.set(id, spec.needs);
    x += w;
    rowHeight = Math.max(rowHeight, h);
  }
  const tags = options.tags ?? ['tripline'];
  return {
    file: options.file,
    needs,
    json: {
      uid: options.uid,
      title: options.title,
      description: options.description,
      tags,
      timezone: 'utc',
      editable: true,
      graphTooltip: 1,
      schemaVersion: SCHEMA_VERSION,
      version: 1,
      refresh: options.refresh ?? '10s',
      time: options.time ?? { from: 'now-6h', to: 'now' },
      timepicker: {},
      fiscalYearStartMonth: 0,
      liveNow: false,
      weekStart: '',
      links: [
        {
          title: 'Tripline',
          type: 'dashboards',
          tags: ['tripline'],
          asDropdown: true,
          includeVars: false,
          keepTime: true,
          icon: 'external link',
          targetBlank: false,
          tooltip: '',
          url: '',
        },
      ],
      annotations: {
        list: [
          {
            builtIn: 1,
            datasource: { type: 'grafana', uid: '-- Grafana --' },
            enable: true,
            hide: true,
            iconColor: 'rgba(0, 211, 255, 1)',
            name: 'Annotations & Alerts',
            type: 'dashboard',
          },
        ],
      },
      templating: { list: options.variables },
      panels,
    },
  };
}
