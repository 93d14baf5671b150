/**
 * Tripline started as `npm start` does stops on SIGTERM, with exit code 0, while clients still hold connections:
 * an agent's event stream (`GET /v1/stream` with the agent token, read the way a kit reads it) and an OTLP
 * exporter stalled in the middle of uploading a request body. Before the HTTP servers' close was bounded, the
 * stalled upload kept the OTLP receiver from closing for as long as its client kept the connection (forever), and
 * `tripline.stop()` hung. A shutdown that outlasts TRIPLINE_SHUTDOWN_GRACE_MS exits 1 naming the steps still under
 * way, which the test helper reports (test/helpers/tripline-process.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_AGENT_TOKEN, TEST_AUTH_ENV } from '../helpers/auth.ts';
import { startTriplineProcess } from '../helpers/tripline-process.ts';
import type { TriplineProcess } from '../helpers/tripline-process.ts';
import { streamUntilReady } from '../helpers/event-stream.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'tripline-shutdown-'));
let tripline: TriplineProcess | undefined;

afterAll(() => {
  if (tripline?.child.exitCode === null) tripline.child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

/** Opens the event stream with the agent token and reads it until `ready`; `ended` settles when the stream ends. */
async function openStream(apiUrl: string): Promise<{ ended: Promise<string> }> {
  const response = await fetch(`${apiUrl}/v1/stream?agent_id=shutdown-agent`, {
    headers: { authorization: `Bearer ${TEST_AGENT_TOKEN}` },
  });
  expect(response.status).toBe(200);
  const { ended } = await streamUntilReady(response);
  return { ended: ended.then(() => 'ended') };
}

/** An OTLP upload whose headers and the first bytes of its body were sent, the rest never; resolves when connected. */
async function stalledUpload(otlpUrl: string): Promise<{ socket: Socket; closed: Promise<void> }> {
  const { hostname, port } = new URL(otlpUrl);
  const socket = connect(Number(port), hostname);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(
    [
      'POST /v1/traces HTTP/1.1',
      `Host: ${hostname}:${port}`,
      `Authorization: Bearer ${TEST_AGENT_TOKEN}`,
      'Content-Type: application/json',
      'Content-Length: 4096',
      'Connection: keep-alive',
      '',
      '{"resourceSpans":[',
    ].join('\r\n'),
  );
  return { socket, closed };
}

describe('stopping Tripline while clients hold connections', () => {
  it('exits with code 0 on SIGTERM with an agent stream open and an OTLP upload stalled mid-body', async () => {
    tripline = await startTriplineProcess({ ...TEST_AUTH_ENV, TRIPLINE_DATA_DIR: dataDir, LOG_LEVEL: 'debug' });
    const stream = await openStream(tripline.apiUrl);
    const upload = await stalledUpload(tripline.otlpUrl);
    // Lets the receiver read the request's headers (its body stays pending).
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await fetch(`${tripline.apiUrl}/readyz`)).status).toBe(200);

    const code = await tripline.stop();

    expect(code).toBe(0);
    expect(await stream.ended).toBe('ended');
    await upload.closed;
    const output = tripline.output();
    expect(output).toContain('"msg":"stopped"');
    expect(output).not.toContain('SHUTDOWN_TIMEOUT');
    // Every step of the shutdown was logged as it finished, the HTTP servers' and the store's among them.
    for (const step of ['api', 'otlp receiver', 'kill switch', 'store'])
      expect(output).toContain(`"step":"${step}","ms":`);
    upload.socket.destroy();
  });
});
