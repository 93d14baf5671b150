/**
 * Tripline's servers over TLS (TRIPLINE_TLS_CERT_FILE / TRIPLINE_TLS_KEY_FILE), through a running embedded
 * Tripline: the API and the OTLP receiver speak HTTPS only, an OpenTelemetry SDK exporter that trusts the
 * certificate delivers spans (its task is then read over HTTPS), and a client that does not trust it is refused.
 */
import { request } from 'node:https';
import { request as plainRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpanKind } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../services/app/config.ts';
import { startEmbedded } from '../../services/app/embedded.ts';
import type { RunningTripline } from '../../services/app/embedded.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { TEST_AGENT_TOKEN, adminHeaders, loopbackTestEnv } from '../helpers/auth.ts';
import { makeCertificate } from '../helpers/certificates.ts';
import type { TestCertificate } from '../helpers/certificates.ts';
import { waitFor } from '../helpers/wait.ts';

/** GET over HTTPS trusting `ca` (undefined: the system's CAs only); resolves with the status and body. */
function httpsGet(url: string, ca: Buffer | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: adminHeaders, ...(ca === undefined ? {} : { ca }) }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('Tripline over TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tripline-tls-'));
  let certificate: TestCertificate;
  let running: RunningTripline;

  beforeAll(async () => {
    certificate = makeCertificate(dir);
    const config = loadConfig({
      ...loopbackTestEnv(join(dir, 'data')),
      TRIPLINE_TLS_CERT_FILE: certificate.certFile,
      TRIPLINE_TLS_KEY_FILE: certificate.keyFile,
    });
    running = await startEmbedded(config, createLogger('silent'));
  }, 120_000);

  afterAll(async () => {
    await running.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the API and the OTLP receiver over HTTPS only', async () => {
    expect(running.apiUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(running.otlpUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await httpsGet(`${running.apiUrl}/healthz`, certificate.pem)).toMatchObject({ status: 200 });
    // A client that does not trust the certificate is refused before it sends anything.
    await expect(httpsGet(`${running.apiUrl}/healthz`, undefined)).rejects.toThrow(/self-signed certificate/);
    // Plain HTTP to the same port gets no HTTP answer.
    const plain = running.apiUrl.replace('https://', 'http://');
    await expect(
      new Promise((resolve, reject) => {
        const req = plainRequest(`${plain}/healthz`, (response) => resolve(response.statusCode));
        req.on('error', reject);
        req.end();
      }),
    ).rejects.toThrow();
  });

  it('takes spans from an OpenTelemetry SDK exporter that trusts the certificate', async () => {
    const exporter = new OTLPTraceExporter({
      url: `${running.otlpUrl}/v1/traces`,
      headers: { authorization: `Bearer ${TEST_AGENT_TOKEN}` },
      httpAgentOptions: { ca: certificate.pem },
      timeoutMillis: 10_000,
    });
    const provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'tls-agent', 'tripline.task.type': 'summarize_ticket' }),
      spanProcessors: [new SimpleSpanProcessor({ exporter })],
    });
    const span = provider.getTracer('tls-test').startSpan('execute_tool get_ticket', {
      kind: SpanKind.INTERNAL,
      attributes: {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': 'get_ticket',
        'tripline.task.id': 'tls-task-1',
      },
    });
    span.end();
    await provider.forceFlush();
    await provider.shutdown();
    const task = await waitFor('the task over HTTPS', async () => {
      const answer = await httpsGet(`${running.apiUrl}/v1/tasks/tls-task-1`, certificate.pem);
      return answer.status === 200 ? (JSON.parse(answer.body) as Record<string, unknown>) : undefined;
    });
    expect(task).toMatchObject({ taskId: 'tls-task-1', taskType: 'summarize_ticket' });
  });
});
