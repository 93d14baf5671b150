/**
 * What Grafana and the ClickHouse plugin do to a panel's SQL before ClickHouse sees it, reproduced so tests can
 * run every panel's query against the ClickHouse engine exactly as Grafana would send it:
 *
 * 1. Template variables (frontend, `CHDatasource.applyTemplateVariables` → `templateSrv.replace(sql, vars,
 *    format)`): `$name`, `${name}`, `${name:fmt}` and `[[name]]` of a defined variable become its value; the
 *    plugin's `format` joins a multi-value as `'a','b'` and leaves a single value as it is. Unknown names stay.
 * 2. Macros (backend, grafana-plugin-sdk-go `sqlutil.Interpolate` with the plugin's `pkg/macros/macros.go`):
 *    for each macro name, every `$__name` (word boundary) is found; its arguments are what lies between the
 *    first `(` after it and the matching `)`, split on `,` and trimmed. A `)` seen before any `(` ends the search
 *    (no arguments). Careful: a macro written without parentheses takes as its arguments the next parenthesised
 *    group anywhere after it, swallowing the text in between (`$__fromTime AND x IN (1)` breaks), so write
 *    argument-less macros as `$__fromTime()` or inside parentheses.
 *
 * Sources: grafana/clickhouse-datasource pkg/macros/macros.go and src/data/CHDatasource.ts;
 * grafana/grafana-plugin-sdk-go data/sqlutil/macros.go (getMacroMatches, Interpolate).
 */

export interface QueryContext {
  /** The dashboard time range. */
  from: Date;
  to: Date;
  /** The panel's interval (Grafana computes it from the range and the panel width). */
  intervalMs: number;
  /** Template variable values by name. */
  variables: Readonly<Record<string, string | readonly string[]>>;
}

type MacroFunction = (context: QueryContext, args: string[]) => string;

export class MacroError extends Error {
  override readonly name = 'MacroError';
}

const unixSeconds = (date: Date): number => Math.floor(date.getTime() / 1000);
const toDateTime = (date: Date): string => `toDateTime(${unixSeconds(date)})`;
const toDateTime64 = (date: Date): string => `fromUnixTimestamp64Milli(${date.getTime()})`;
const toDate = (date: Date): string => `toDate('${date.toISOString().slice(0, 10)}')`;
const rfc3339 = (date: Date): string => `${date.toISOString().slice(0, 19)}Z`;

function oneArgument(name: string, args: string[]): string {
  const [column] = args;
  if (args.length !== 1 || column === undefined)
    throw new MacroError(`$__${name}: unexpected number of arguments: expected 1 argument, received ${args.length}`);
  return column;
}

const intervalSeconds = (context: QueryContext): number => Math.trunc(Math.max(context.intervalMs / 1000, 1));

/** The plugin's macros (pkg/macros/macros.go). */
const PLUGIN_MACROS: Readonly<Record<string, MacroFunction>> = {
  fromTime: (c) => toDateTime(c.from),
  toTime: (c) => toDateTime(c.to),
  fromTime_ms: (c) => toDateTime64(c.from),
  toTime_ms: (c) => toDateTime64(c.to),
  timeFilter: (c, args) => {
    const column = oneArgument('timeFilter', args);
    return `${column} >= ${toDateTime(c.from)} AND ${column} <= ${toDateTime(c.to)}`;
  },
  timeFilter_ms: (c, args) => {
    const column = oneArgument('timeFilter_ms', args);
    return `${column} >= ${toDateTime64(c.from)} AND ${column} <= ${toDateTime64(c.to)}`;
  },
  dateFilter: (c, args) => {
    const column = oneArgument('dateFilter', args);
    return `${column} >= ${toDate(c.from)} AND ${column} <= ${toDate(c.to)}`;
  },
  dateTimeFilter: (c, args) => dateTimeFilter(c, args),
  dt: (c, args) => dateTimeFilter(c, args),
  timeInterval: (c, args) =>
    `toStartOfInterval(toDateTime(${oneArgument('timeInterval', args)}), INTERVAL ${intervalSeconds(c)} second)`,
  timeInterval_ms: (c, args) =>
    `toStartOfInterval(toDateTime64(${oneArgument('timeInterval_ms', args)}, 3), INTERVAL ${Math.trunc(Math.max(c.intervalMs, 1))} millisecond)`,
  interval_s: (c) => String(intervalSeconds(c)),
};

function dateTimeFilter(c: QueryContext, args: string[]): string {
  const [dateColumn, timeColumn] = args;
  if (args.length !== 2 || dateColumn === undefined || timeColumn === undefined) {
    throw new MacroError(
      `$__dateTimeFilter: unexpected number of arguments: expected 2 arguments, received ${args.length}`,
    );
  }
  return `(${dateColumn} >= ${toDate(c.from)} AND ${dateColumn} <= ${toDate(c.to)}) AND (${timeColumn} >= ${toDateTime(c.from)} AND ${timeColumn} <= ${toDateTime(c.to)})`;
}

/** sqlutil's defaults, used for the names the plugin does not define. */
const SQLUTIL_DEFAULTS: Readonly<Record<string, MacroFunction>> = {
  timeFilter: (c, args) => {
    const column = oneArgument('timeFilter', args);
    return `${column} >= '${rfc3339(c.from)}' AND ${column} <= '${rfc3339(c.to)}'`;
  },
  timeFrom: (c, args) => `${oneArgument('timeFrom', args)} >= '${rfc3339(c.from)}'`,
  timeTo: (c, args) => `${oneArgument('timeTo', args)} <= '${rfc3339(c.to)}'`,
  timeGroup: (_c, args) => {
    const [column, period] = args;
    if (args.length !== 2 || column === undefined)
      throw new MacroError(`$__timeGroup: unexpected number of arguments: expected 2, received ${args.length}`);
    const parts = ['minute', 'hour', 'day', 'month', 'year'];
    const start = parts.indexOf(period ?? '');
    return start === -1
      ? ''
      : parts
          .slice(start)
          .map((part) => `datepart(${part}, ${column})`)
          .join(',');
  },
  table: () => '',
  column: () => '',
};

/** Every macro the backend knows: the plugin's, then sqlutil's defaults for names the plugin leaves out. */
export const MACROS: Readonly<Record<string, MacroFunction>> = { ...SQLUTIL_DEFAULTS, ...PLUGIN_MACROS };

/** `getMacroMatches`: each occurrence of `$__name` with the raw text of its arguments ('' when none). */
function macroMatches(sql: string, name: string): { text: string; args: string | undefined }[] {
  const pattern = new RegExp(`\\$__${name}\\b`, 'g');
  const found: { text: string; args: string | undefined }[] = [];
  for (const match of sql.matchAll(pattern)) {
    const start = match.index;
    const rest = sql.slice(start);
    let depth = 0;
    let argStart = 0;
    let end = 0;
    for (let i = 0; i < rest.length; i += 1) {
      if (depth === 0 && end > 0) break;
      const char = rest[i];
      if (char === '(') {
        depth += 1;
        if (argStart === 0) argStart = i + 1;
      } else if (char === ')') {
        if (depth === 0) {
          end = 0;
          break;
        }
        depth -= 1;
        end = i + 1;
      }
    }
    if (end === 0) end = match[0].length;
    const text = rest.slice(0, end);
    found.push({ text, args: argStart > 0 ? rest.slice(argStart, end - 1) : undefined });
  }
  return found;
}

/**
 * Expands the backend macros as `sqlutil.Interpolate` does. `order` is the order macro names are tried in; Go
 * iterates a map in random order, so tests expand with several orders and expect the same SQL.
 */
export function expandMacros(
  sql: string,
  context: QueryContext,
  order: readonly string[] = Object.keys(MACROS),
): string {
  let out = sql;
  for (const name of order) {
    const macro = MACROS[name];
    if (macro === undefined) throw new Error(`unknown macro ${name}`);
    for (const match of macroMatches(out, name)) {
      // The Go code always passes the split argument list; no parentheses gives one empty argument there too
      // (strings.Split("", ",") is [""]).
      const args = (match.args ?? '').split(',').map((arg) => arg.trim());
      out = out.replaceAll(match.text, macro(context, args));
    }
  }
  return out;
}

/** Grafana's variable syntax (public/app/features/variables/utils.ts `variableRegex`). */
const VARIABLE_PATTERN = /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\${(\w+)(?:\.([^:^}]+))?(?::([^}]+))?}/g;

/** Grafana's `encodeURIComponentStrict` (the `percentencode` format): also encodes `!'()*`. */
const percentEncode = (value: string): string =>
  encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** Grafana's `sqlstring` format: `'` doubled, `"` backslash-escaped, backslashes left as they are. */
const sqlString = (value: string): string => `'${value.replace(/'|"/g, (c) => (c === "'" ? "''" : '\\"'))}'`;

/** The explicit formats (`${name:format}`) the dashboards may use, as Grafana's format registry applies them. */
const FORMATS: Readonly<Record<string, (value: string | readonly string[]) => string>> = {
  percentencode: (value) => (typeof value === 'string' ? percentEncode(value) : percentEncode(`{${value.join(',')}}`)),
  sqlstring: (value) => (typeof value === 'string' ? sqlString(value) : value.map(sqlString).join(',')),
  raw: (value) => (typeof value === 'string' ? value : value.join(',')),
};

/**
 * `templateSrv.replace(sql, vars, format)`: an explicit `${name:format}` applies that format; otherwise the
 * plugin's `format` joins arrays as `'a','b'` and leaves a single value as it is (unescaped).
 */
export function interpolateVariables(sql: string, variables: QueryContext['variables']): string {
  return sql.replace(
    VARIABLE_PATTERN,
    (
      whole: string,
      plain?: string,
      bracket?: string,
      bracketFormat?: string,
      braced?: string,
      _field?: string,
      bracedFormat?: string,
    ) => {
      const name = plain ?? bracket ?? braced;
      if (name === undefined || !Object.hasOwn(variables, name)) return whole;
      const value = variables[name];
      if (value === undefined) return whole;
      const formatName = bracedFormat ?? bracketFormat;
      if (formatName !== undefined) {
        const format = FORMATS[formatName];
        if (format === undefined) throw new MacroError(`variable format ${formatName} is not reproduced here`);
        return format(value);
      }
      return typeof value === 'string' ? value : `'${value.join("','")}'`;
    },
  );
}

/** Variables in a query that the dashboard must define (builtin `$__…` names excluded). */
export function referencedVariables(sql: string): string[] {
  const names = new Set<string>();
  for (const match of sql.matchAll(VARIABLE_PATTERN)) {
    const name = match[1] ?? match[2] ?? match[4];
    if (name !== undefined && !name.startsWith('__')) names.add(name);
  }
  return [...names].sort();
}

/** The SQL ClickHouse receives for a panel query. */
export function renderQuery(sql: string, context: QueryContext, order?: readonly string[]): string {
  return expandMacros(interpolateVariables(sql, context.variables), context, order);
}
