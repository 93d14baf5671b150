/**
 * `GET /readyz` is public (probes send no token) and called every few seconds: it must cost no table read on the
 * store the processor writes through, and tell an anonymous caller nothing but ready or not. Why the store is
 * not ready goes to the log. An embedded Tripline in this process, on the real engine.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../services/app/config.ts';
import { startEmbedded } from '../../services/app/embedded.ts';
import type { RunningTripline } from '../../services/app/embedded.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { TEST_AUTH_ENV } from '../helpers/auth.ts';

const logLines: string[] = [];
let running: RunningTripline;

beforeAll(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-readiness-'));
  const config = loadConfig({
    TRIPLINE_DATA_DIR: dataDir,
    TRIPLINE_KEYS_DIR: join(dataDir, 'keys'),
    TRIPLINE_API_HOST: '127.0.0.1',
    TRIPLINE_OTLP_HOST: '127.0.0.1',
    TRIPLINE_API_PORT: '0',
    TRIPLINE_OTLP_PORT: '0',
    ...TEST_AUTH_ENV,
  });
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  });
  running = await startEmbedded(config, createLogger('warn', 'tripline', destination));
});

afterAll(async () => {
  await running.stop();
});

describe('GET /readyz', () => {
  it('answers ready without reading any table', async () => {
    const counts = vi.spyOn(running.store, 'counts');
    for (let probe = 0; probe < 3; probe += 1) {
      const response = await fetch(`${running.apiUrl}/readyz`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ status: 'ready' });
    }
    expect(counts).not.toHaveBeenCalled();
    counts.mockRestore();
  });

  it('tells an anonymous caller only "not ready" when the store fails, and the log why', async () => {
    await running.store.close();
    const response = await fetch(`${running.apiUrl}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ status: 'not_ready' });
    const warning = logLines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.msg === 'not ready');
    expect(JSON.stringify(warning?.checks)).toMatch(/store is closed/);
  });
});
