/**
 * A ClickHouse server for the fault drills: the in-process engine (chdb) of this process behind the part of
 * ClickHouse's HTTP interface that `@clickhouse/client` uses, so that several Tripline processes can share one
 * store through `CLICKHOUSE_URL` (chdb binds one data directory per process) and a drill can take the server
 * away (SIGKILL) and bring it back on the same port and data.
 *
 *   node test/drills/clickhouse-server.ts <dataDir> <port>      prints `listening <url>` when ready
 *
 * The protocol subset: `POST /?query=INSERT …` with the rows as the body (inserts); `POST /` with the SQL as the
 * body (queries, DDL); settings and `param_*` in the URL or as multipart form fields; `GET /ping`. Errors are
 * answered as ClickHouse does (status 500, `X-ClickHouse-Exception-Code`, `Code: N. DB::Exception: … (TYPE)`).
 * Query parameters holding a quote inside an array are not supported (the drills' queries have none).
 *
 * Drill controls (the user is the request's basic-auth user, i.e. CLICKHOUSE_USER):
 *   POST /drill/hold?user=U&table=T[&contains=S]   the next insert into table T by user U (whose rows contain
 *                                     the text S) waits, not yet executed
 *   GET  /drill/held                  `{"held": n}`: inserts waiting
 *   POST /drill/release               the waiting inserts run (as a server finishes an insert it has received)
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createChdbConnection } from 'chdb/connection';

const [dataDir, portText] = process.argv.slice(2);
if (dataDir === undefined || portText === undefined) {
  process.stderr.write('usage: node test/drills/clickhouse-server.ts <dataDir> <port>\n');
  process.exit(2);
}

/** URL parameters that are not settings. */
const NOT_SETTINGS = new Set(['query', 'query_id', 'database', 'session_id', 'role', 'user', 'password']);
/** Connections over the data directory; each runs one statement at a time. */
const POOL_SIZE = 3;

interface Lane {
  connection: ReturnType<typeof createChdbConnection>;
  tail: Promise<unknown>;
  waiting: number;
}
const lanes: Lane[] = Array.from({ length: POOL_SIZE }, () => ({
  connection: createChdbConnection({ path: dataDir }),
  tail: Promise.resolve(),
  waiting: 0,
}));

function onLane<T>(work: (connection: Lane['connection']) => Promise<T>): Promise<T> {
  const lane = lanes.reduce((best, candidate) => (candidate.waiting < best.waiting ? candidate : best));
  lane.waiting += 1;
  const result = lane.tail.then(() => work(lane.connection));
  lane.tail = result.catch(() => undefined).finally(() => (lane.waiting -= 1));
  return result;
}

interface Statement {
  sql: string;
  /** Rows of an insert (the SQL is then `INSERT … FORMAT …`). */
  rows: string | undefined;
  settings: Record<string, string>;
  params: Record<string, string>;
  user: string;
}

const holds: { user: string; table: string; contains: string }[] = [];
const held: (() => void)[] = [];

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function userOf(request: IncomingMessage): string {
  const header = request.headers.authorization;
  if (header?.startsWith('Basic ') === true)
    return Buffer.from(header.slice(6), 'base64').toString('utf8').split(':')[0] ?? '';
  const user = request.headers['x-clickhouse-user'];
  return typeof user === 'string' ? user : 'default';
}

/** Fields of a multipart/form-data body (clickhouse-js sends long query parameters that way). */
function multipartFields(body: string, contentType: string): Map<string, string> {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType);
  const marker = `--${boundary?.[1] ?? boundary?.[2] ?? ''}`;
  const fields = new Map<string, string>();
  for (const part of body.split(marker)) {
    const split = part.indexOf('\r\n\r\n');
    if (split === -1) continue;
    const name = /name="([^"]+)"/.exec(part.slice(0, split))?.[1];
    if (name !== undefined) fields.set(name, part.slice(split + 4).replace(/\r\n$/, ''));
  }
  return fields;
}

/**
 * chdb formats bound strings itself (TSV-escaping them), while clickhouse-js sends them already escaped: undo
 * the escaping so that chdb's formatting gives back the text the client sent.
 */
function unescapeParam(text: string): string {
  const quoted = text.startsWith('[') || text.startsWith('(') ? text : text.replaceAll("\\'", "'");
  return quoted.replace(
    /\\([\\0bfnrt])/g,
    (_match, char: string) => ({ '\\': '\\', '0': '\0', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' })[char] ?? char,
  );
}

async function parse(request: IncomingMessage): Promise<Statement> {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const body = await readBody(request);
  const entries = new Map(url.searchParams);
  const contentType = request.headers['content-type'] ?? '';
  let text = body;
  if (contentType.startsWith('multipart/form-data')) {
    const fields = multipartFields(body, contentType);
    for (const [name, value] of fields) if (name !== 'query') entries.set(name, value);
    text = fields.get('query') ?? '';
  }
  const settings: Record<string, string> = {};
  const params: Record<string, string> = {};
  for (const [name, value] of entries) {
    if (name.startsWith('param_')) params[name.slice(6)] = unescapeParam(value);
    else if (!NOT_SETTINGS.has(name)) settings[name] = value;
  }
  const insert = entries.get('query');
  return insert === undefined
    ? { sql: text, rows: undefined, settings, params, user: userOf(request) }
    : { sql: insert, rows: text, settings, params, user: userOf(request) };
}

async function run(statement: Statement): Promise<Buffer> {
  const common = {
    clickhouse_settings: statement.settings,
    ...(Object.keys(statement.params).length === 0 ? {} : { query_params: statement.params }),
  };
  if (statement.rows !== undefined) {
    const rows = statement.rows;
    const table = /^\s*INSERT\s+INTO\s+([\w.`]+)/i.exec(statement.sql)?.[1]?.replaceAll('`', '').split('.').pop() ?? '';
    const holdIndex = holds.findIndex(
      (hold) => hold.user === statement.user && hold.table === table && rows.includes(hold.contains),
    );
    if (holdIndex !== -1) {
      holds.splice(holdIndex, 1);
      await new Promise<void>((resolve) => held.push(resolve));
    }
    await onLane((connection) => connection.insert({ query: statement.sql, values: rows, ...common }));
    return Buffer.alloc(0);
  }
  const result = await onLane((connection) => connection.query({ query: statement.sql, ...common }));
  const chunks: Buffer[] = [];
  for await (const chunk of result.stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function answerError(response: ServerResponse, error: unknown): void {
  const cause = (error as { cause?: unknown }).cause;
  const causeText = cause instanceof Error ? cause.message : '';
  const code = (error as { code?: unknown }).code;
  const type = (error as { type?: unknown }).type;
  const message = error instanceof Error ? error.message : String(error);
  const numeric = typeof code === 'string' && /^\d+$/.test(code) ? code : '1001';
  const text = /^Code: \d+/.test(causeText)
    ? causeText
    : `Code: ${numeric}. DB::Exception: ${message} (${typeof type === 'string' ? type : 'STD_EXCEPTION'})`;
  if (response.headersSent) {
    response.destroy();
    return;
  }
  response.writeHead(500, { 'content-type': 'text/plain; charset=UTF-8', 'x-clickhouse-exception-code': numeric });
  response.end(`${text}\n`);
}

async function control(url: URL, response: ServerResponse): Promise<void> {
  if (url.pathname === '/drill/hold')
    holds.push({
      user: url.searchParams.get('user') ?? '',
      table: url.searchParams.get('table') ?? 'events',
      contains: url.searchParams.get('contains') ?? '',
    });
  if (url.pathname === '/drill/release') for (const resolve of held.splice(0)) resolve();
  response.writeHead(200, { 'content-type': 'application/json' });
  response.end(JSON.stringify({ held: held.length, holds: holds.length }));
  await Promise.resolve();
}

const server = createServer((request, response) => {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const handle = async (): Promise<void> => {
    if (url.pathname.startsWith('/drill/')) return control(url, response);
    if (url.pathname === '/ping') {
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end('Ok.\n');
      return;
    }
    const output = await run(await parse(request));
    response.writeHead(200, { 'content-type': 'text/plain; charset=UTF-8', 'x-clickhouse-summary': '{}' });
    response.end(output);
  };
  handle().catch((error: unknown) => answerError(response, error));
});
server.keepAliveTimeout = 5000;
server.listen(Number(portText), '127.0.0.1', () => {
  process.stdout.write(`listening http://127.0.0.1:${portText}\n`);
});
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void Promise.all(lanes.map((lane) => lane.tail.then(() => lane.connection.close()))).finally(() => process.exit(0));
});
