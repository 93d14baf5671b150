/**
 * The MCP gateway's configuration (its section of TriplineConfig), read from the environment and validated at
 * start-up: a bad value throws CONFIG_INVALID naming the variable. Off unless TRIPLINE_MCP_SERVERS names at least
 * one upstream. Every variable, with its default, is in MCP_GATEWAY_VARIABLES (for the README).
 */
import { isAcceptableToken, MIN_TOKEN_LENGTH } from '../auth/api-tokens.ts';
import { invalid, readInt, readList, readOptionalString, readString, readUrl, type Env } from '../shared/env.ts';

/** A Streamable HTTP MCP server the gateway forwards to; `headers` are the gateway's own credentials there. */
export interface HttpUpstream {
  kind: 'http';
  url: string;
  headers: Record<string, string>;
}

/** A local MCP server the gateway spawns (one process per MCP session) and talks to over stdio. */
export interface StdioUpstream {
  kind: 'stdio';
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string | undefined;
}

export type Upstream = HttpUpstream | StdioUpstream;

/**
 * A client the operator binds to an agent: its static token (a secret, compared by hash) stands for `agentId`
 * of `tenant`; the gateway starts a task of `taskType` per MCP session (services/mcp-gateway/sessions.ts).
 */
export interface ClientBinding {
  name: string;
  token: string;
  tenant: string;
  agentId: string;
  taskType: string;
  tools: string[];
  resources: string[];
  scopes: string[];
}

export interface McpGatewayConfig {
  /** Upstreams by name: each is served at `/mcp/<name>`. Empty: the gateway is off. */
  servers: Record<string, Upstream>;
  clients: ClientBinding[];
  host: string;
  port: number;
  /** Where clients reach the gateway (the protected resource metadata's `resource`). */
  publicUrl: string;
  /** Origins a browser-based client may call from (a request with another `Origin` gets 403). */
  allowedOrigins: string[];
  /** A bound client's task ends after this long without a request in its session. */
  sessionIdleMs: number;
  /** Distributed mode: the API (`/v1/check`, `/v1/tasks`, the JWKS) and the OTLP receiver, and the agent token for both. */
  apiUrl: string;
  otlpUrl: string;
  apiToken: string | undefined;
}

export const MCP_GATEWAY_VARIABLES = [
  [
    'TRIPLINE_MCP_SERVERS',
    '{}',
    'JSON: the MCP servers the gateway fronts, name → {"url": "…", "headers": {…}} (Streamable HTTP) or {"command": "…", "args": […], "env": {…}, "cwd": "…"} (stdio, spawned per session); each served at /mcp/<name>; empty = the gateway is off (docs/mcp-gateway.md)',
  ],
  [
    'TRIPLINE_MCP_CLIENTS',
    '[]',
    'JSON array of bound clients [{"name", "token" (24+ characters), "agentId", "taskType", "tenant"?, "tools"?, "resources"?, "scopes"?}]: the token stands for the agent, a task is started per MCP session',
  ],
  ['TRIPLINE_MCP_HOST', '127.0.0.1', 'address the MCP gateway binds'],
  ['TRIPLINE_MCP_PORT', '8090', 'MCP gateway port (0 picks a free port)'],
  ['TRIPLINE_MCP_PUBLIC_URL', '(http://localhost:<TRIPLINE_MCP_PORT>)', 'the gateway as MCP clients reach it'],
  [
    'TRIPLINE_MCP_ALLOWED_ORIGINS',
    '(none)',
    'comma-separated origins browser-based MCP clients may call from; a request with another Origin gets 403',
  ],
  [
    'TRIPLINE_MCP_SESSION_IDLE_MS',
    '900000',
    "a bound client's task ends after this long without a request (10,000 to 86,400,000)",
  ],
  [
    'TRIPLINE_MCP_API_URL',
    '(TRIPLINE_PUBLIC_URL)',
    'distributed mode: the API the gateway asks (/v1/check, /v1/tasks)',
  ],
  ['TRIPLINE_MCP_OTLP_URL', 'http://localhost:4318', 'distributed mode: the OTLP receiver the gateway sends spans to'],
  [
    'TRIPLINE_MCP_API_TOKEN',
    '(TRIPLINE_AGENT_TOKEN)',
    "distributed mode: the agent token the gateway uses for checks, task starts and spans (its tenant is the gateway's)",
  ],
] as const;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
/** Headers the gateway sets itself: an upstream's configured headers may not replace them. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'accept',
  'connection',
  'transfer-encoding',
  'mcp-session-id',
  'mcp-protocol-version',
  'mcp-method',
  'mcp-name',
  'last-event-id',
]);

export function readMcpGatewayConfig(env: Env): McpGatewayConfig {
  const port = readInt(env, 'TRIPLINE_MCP_PORT', 8090, { min: 0, max: 65535 });
  const publicUrl = (readUrl(env, 'TRIPLINE_MCP_PUBLIC_URL') ?? `http://localhost:${String(port)}`).replace(/\/$/, '');
  const origins = readOptionalString(env, 'TRIPLINE_MCP_ALLOWED_ORIGINS');
  const apiToken = readOptionalString(env, 'TRIPLINE_MCP_API_TOKEN') ?? readOptionalString(env, 'TRIPLINE_AGENT_TOKEN');
  if (apiToken !== undefined && !isAcceptableToken(apiToken))
    throw invalid(
      'TRIPLINE_MCP_API_TOKEN',
      '(not shown: it is a secret)',
      `at least ${String(MIN_TOKEN_LENGTH)} characters of letters, digits and -._~+/=`,
    );
  return {
    servers: parseServers(readOptionalString(env, 'TRIPLINE_MCP_SERVERS')),
    clients: parseClients(readOptionalString(env, 'TRIPLINE_MCP_CLIENTS')),
    host: readString(env, 'TRIPLINE_MCP_HOST', '127.0.0.1'),
    port,
    publicUrl,
    allowedOrigins: origins === undefined ? [] : readList(env, 'TRIPLINE_MCP_ALLOWED_ORIGINS', []),
    sessionIdleMs: readInt(env, 'TRIPLINE_MCP_SESSION_IDLE_MS', 900_000, { min: 10_000, max: 86_400_000 }),
    apiUrl: (
      readUrl(env, 'TRIPLINE_MCP_API_URL') ??
      readUrl(env, 'TRIPLINE_PUBLIC_URL') ??
      'http://localhost:8080'
    ).replace(/\/$/, ''),
    otlpUrl: (readUrl(env, 'TRIPLINE_MCP_OTLP_URL') ?? 'http://localhost:4318').replace(/\/$/, ''),
    apiToken,
  };
}

/** Whether the gateway runs: at least one upstream is configured. */
export function mcpGatewayEnabled(config: McpGatewayConfig): boolean {
  return Object.keys(config.servers).length > 0;
}

const SERVERS_EXPECTED =
  'a JSON object {"<name>": {"url": "http(s)://…", "headers"?: {…}} | {"command": "…", "args"?: ["…"], "env"?: {…}, "cwd"?: "…"}}; names of letters, digits, _ . - (up to 64)';

function parseServers(text: string | undefined): Record<string, Upstream> {
  if (text === undefined) return {};
  // Upstream headers may hold credentials: name the problem, never the value.
  const fail = (problem: string): never => {
    throw invalid('TRIPLINE_MCP_SERVERS', '(not shown: it may hold credentials)', `${SERVERS_EXPECTED} (${problem})`);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return fail('not JSON');
  }
  if (!isObject(parsed)) return fail('not an object');
  const servers: Record<string, Upstream> = {};
  for (const [name, entry] of Object.entries(parsed)) {
    if (!NAME.test(name)) return fail(`bad name ${JSON.stringify(name.slice(0, 80))}`);
    if (!isObject(entry)) return fail(`${name} is not an object`);
    servers[name] = 'url' in entry ? httpUpstream(name, entry, fail) : stdioUpstream(name, entry, fail);
  }
  return servers;
}

function httpUpstream(name: string, entry: Record<string, unknown>, fail: (problem: string) => never): HttpUpstream {
  const allowed = ['url', 'headers'];
  const extra = Object.keys(entry).find((key) => !allowed.includes(key));
  if (extra !== undefined) return fail(`${name}: unknown field ${extra}`);
  const url = entry.url;
  if (typeof url !== 'string' || !isHttpUrl(url)) return fail(`${name}.url is not an http(s) URL`);
  const headers = stringRecord(entry.headers);
  if (headers === undefined) return fail(`${name}.headers is not an object of strings`);
  for (const header of Object.keys(headers)) {
    if (!HEADER_NAME.test(header) || RESERVED_HEADERS.has(header.toLowerCase()))
      return fail(`${name}.headers may not set ${JSON.stringify(header)}`);
  }
  return { kind: 'http', url, headers };
}

function stdioUpstream(name: string, entry: Record<string, unknown>, fail: (problem: string) => never): StdioUpstream {
  const allowed = ['command', 'args', 'env', 'cwd'];
  const extra = Object.keys(entry).find((key) => !allowed.includes(key));
  if (extra !== undefined) return fail(`${name}: unknown field ${extra}`);
  const { command, args, cwd } = entry;
  if (typeof command !== 'string' || command === '') return fail(`${name} needs a "url" or a "command"`);
  if (args !== undefined && (!Array.isArray(args) || !args.every((arg) => typeof arg === 'string')))
    return fail(`${name}.args is not an array of strings`);
  const env = stringRecord(entry.env);
  if (env === undefined) return fail(`${name}.env is not an object of strings`);
  if (cwd !== undefined && typeof cwd !== 'string') return fail(`${name}.cwd is not a string`);
  return { kind: 'stdio', command, args: args ?? [], env, cwd };
}

const CLIENTS_EXPECTED =
  'a JSON array [{"name": "…", "token": "<24+ characters>", "agentId": "…", "taskType": "…", "tenant"?: "…", "tools"?: […], "resources"?: […], "scopes"?: […]}] with distinct names and tokens';

function parseClients(text: string | undefined): ClientBinding[] {
  if (text === undefined) return [];
  const fail = (problem: string): never => {
    throw invalid('TRIPLINE_MCP_CLIENTS', '(not shown: it holds client tokens)', `${CLIENTS_EXPECTED} (${problem})`);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return fail('not JSON');
  }
  if (!Array.isArray(parsed)) return fail('not an array');
  const names = new Set<string>();
  const tokens = new Set<string>();
  return parsed.map((entry, index): ClientBinding => {
    if (!isObject(entry)) return fail(`entry ${String(index)} is not an object`);
    const allowed = ['name', 'token', 'tenant', 'agentId', 'taskType', 'tools', 'resources', 'scopes'];
    const extra = Object.keys(entry).find((key) => !allowed.includes(key));
    if (extra !== undefined) return fail(`entry ${String(index)}: unknown field ${extra}`);
    const { name, token, tenant, agentId, taskType } = entry;
    if (typeof name !== 'string' || !NAME.test(name)) return fail(`entry ${String(index)}: bad or missing name`);
    if (typeof token !== 'string' || !isAcceptableToken(token))
      return fail(`${name}: the token needs ${String(MIN_TOKEN_LENGTH)}+ characters of letters, digits and -._~+/=`);
    if (looksLikeJwt(token)) return fail(`${name}: the token may not look like a task token (a JWT)`);
    for (const [field, value] of [
      ['agentId', agentId],
      ['taskType', taskType],
    ] as const)
      if (typeof value !== 'string' || value === '' || value.length > 256)
        return fail(`${name}: ${field} is not a string of 1 to 256 characters`);
    if (tenant !== undefined && (typeof tenant !== 'string' || tenant === ''))
      return fail(`${name}: tenant is not a string`);
    if (names.has(name) || tokens.has(token)) return fail(`${name}: a name or token used twice`);
    names.add(name);
    tokens.add(token);
    const list = (field: 'tools' | 'resources' | 'scopes'): string[] => {
      const value = entry[field];
      if (value === undefined) return [];
      if (!Array.isArray(value) || !value.every((item) => typeof item === 'string'))
        return fail(`${name}: ${field} is not an array of strings`);
      return value;
    };
    return {
      name,
      token,
      tenant: tenant ?? 'default',
      agentId: agentId as string,
      taskType: taskType as string,
      tools: list('tools'),
      resources: list('resources'),
      scopes: list('scopes'),
    };
  });
}

/** A compact JWS (three base64url parts): what a task token looks like. */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function stringRecord(value: unknown): Record<string, string> | undefined {
  if (value === undefined) return {};
  if (!isObject(value) || !Object.values(value).every((item) => typeof item === 'string')) return undefined;
  return { ...(value as Record<string, string>) };
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}
