/**
 * Helpers for the kill switch's tests: local HTTP receivers (node:http on 127.0.0.1) that record what they get
 * and answer as told, an in-process embedded Tripline on a fresh database, and small JSON request helpers.
 *
 * The in-process engine binds one data directory per process: every Tripline a test file starts shares the
 * file's directory and gets a database of its own.
 */
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../services/app/config.ts';
import { startEmbedded } from '../../../services/app/embedded.ts';
import type { EmbeddedOverrides, RunningTripline } from '../../../services/app/embedded.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { TEST_AUTH_ENV, authFor } from '../../helpers/auth.ts';
import { waitFor } from '../../helpers/wait.ts';

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: unknown;
  atMs: number;
}

/** What the receiver answers: a status and body, or 'hang' (never answers until closed). */
export type Answer = { status: number; body?: unknown; headers?: Record<string, string> } | 'hang';

export interface Receiver {
  url: string;
  requests: ReceivedRequest[];
  /** Waits until `count` requests arrived (never a fixed sleep). */
  received(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

export async function startReceiver(
  answer: (request: ReceivedRequest, index: number) => Answer = () => ({ status: 200, body: { ok: true } }),
): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const hanging = new Set<() => void>();
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = body === '' ? undefined : JSON.parse(body);
      } catch {
        json = undefined;
      }
      const received: ReceivedRequest = {
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body,
        json,
        atMs: Date.now(),
      };
      requests.push(received);
      const reply = answer(received, requests.length - 1);
      if (reply === 'hang') {
        const end = (): void => {
          response.destroy();
        };
        hanging.add(end);
        return;
      }
      response.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      response.end(
        reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    received: (count, timeoutMs = 10_000) =>
      waitFor(
        `${count} request(s) at the receiver`,
        () => (requests.length >= count ? requests.slice(0, count) : undefined),
        timeoutMs,
        10,
      ),
    close: () =>
      new Promise<void>((resolve) => {
        for (const end of hanging) end();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const dataDir = mkdtempSync(join(tmpdir(), 'tripline-killswitch-'));
let instances = 0;

export interface TestTripline {
  running: RunningTripline;
  api: string;
  otlp: string;
  database: string;
  keysDir: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** Starts an embedded Tripline in this process on a fresh database (or the given one, to restart). */
export async function startTripline(
  env: Record<string, string> = {},
  overrides: EmbeddedOverrides = {},
  reuse?: { database: string; keysDir: string },
): Promise<TestTripline> {
  instances += 1;
  const database = reuse?.database ?? `ks_${process.pid}_${instances}`;
  const keysDir = reuse?.keysDir ?? join(dataDir, `keys-${database}`);
  const fullEnv = {
    TRIPLINE_DATA_DIR: dataDir,
    CLICKHOUSE_DATABASE: database,
    TRIPLINE_KEYS_DIR: keysDir,
    TRIPLINE_API_HOST: '127.0.0.1',
    TRIPLINE_OTLP_HOST: '127.0.0.1',
    TRIPLINE_API_PORT: '0',
    TRIPLINE_OTLP_PORT: '0',
    LOG_LEVEL: 'silent',
    TRIPLINE_VERIFY_WINDOW_MS: '1000',
    TRIPLINE_VERIFY_CLOCK_SKEW_MS: '20',
    ...TEST_AUTH_ENV,
    ...env,
  };
  const config = loadConfig(fullEnv);
  const running = await startEmbedded(config, createLogger(config.logLevel), overrides);
  return {
    running,
    api: running.apiUrl,
    otlp: running.otlpUrl,
    database,
    keysDir,
    env: fullEnv,
    stop: () => running.stop(),
  };
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authFor('POST', url), ...headers },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

export async function getJson(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { headers: { ...authFor('GET', url), ...headers } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** A revocation as GET /v1/revocations lists it. */
export interface RevocationItem {
  id: string;
  taskId: string;
  agentId: string;
  action: string;
  source: string;
  actor: string;
  reason: string;
  verification: { outcome: string; failures: string[] } | null;
}

export async function revocationsOf(api: string, taskId: string): Promise<RevocationItem[]> {
  const { body } = await getJson(`${api}/v1/revocations?task_id=${encodeURIComponent(taskId)}`);
  return body.items as RevocationItem[];
}

export async function introspect(api: string, token: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${api}/oauth2/introspect`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...authFor('POST', '/oauth2/introspect') },
    body: new URLSearchParams({ token }),
  });
  return (await response.json()) as Record<string, unknown>;
}

/** Reads a server-sent-events response until `marker` appears (or the stream ends), then cancels it. */
export async function readStreamUntil(response: Response, marker: string): Promise<string> {
  const body = response.body as ReadableStream<Uint8Array> | null;
  if (body === null) return '';
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes(marker)) {
    const chunk = await reader.read();
    if (chunk.done) break;
    text += decoder.decode(chunk.value, { stream: true });
  }
  await reader.cancel();
  return text;
}
