/**
 * TLS on Tripline's servers: TRIPLINE_TLS_CERT_FILE and TRIPLINE_TLS_KEY_FILE go together, and what they name is
 * checked at start-up (readable, a certificate, its key, valid now), each failure naming the variable to fix.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../services/app/config.ts';
import { readTls } from '../../services/app/tls.ts';
import { isTriplineError } from '../../services/shared/errors.ts';
import { makeCertificate } from '../helpers/certificates.ts';

const dir = mkdtempSync(join(tmpdir(), 'tripline-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The variable a CONFIG_INVALID error names, with its message. */
function refusal(run: () => unknown): { variable: unknown; message: string } {
  try {
    run();
  } catch (error) {
    if (isTriplineError(error) && error.code === 'CONFIG_INVALID')
      return { variable: error.details.variable, message: error.message };
    throw error;
  }
  throw new Error('accepted');
}

describe('TLS settings', () => {
  it('are off unless both files are named, and refuse one without the other', () => {
    expect(loadConfig({}).tls).toBeUndefined();
    expect(refusal(() => loadConfig({ TRIPLINE_TLS_CERT_FILE: 'server.crt' })).variable).toBe('TRIPLINE_TLS_KEY_FILE');
    expect(refusal(() => loadConfig({ TRIPLINE_TLS_KEY_FILE: 'server.key' })).variable).toBe('TRIPLINE_TLS_CERT_FILE');
    expect(loadConfig({ TRIPLINE_TLS_CERT_FILE: '/etc/t/s.crt', TRIPLINE_TLS_KEY_FILE: '/etc/t/s.key' }).tls).toEqual({
      certFile: '/etc/t/s.crt',
      keyFile: '/etc/t/s.key',
    });
  });

  it('read a certificate and its key, and name the file at fault otherwise', () => {
    const good = makeCertificate(dir, 'good');
    const other = makeCertificate(dir, 'other');
    expect(readTls(undefined)).toBeUndefined();
    expect(readTls({ certFile: good.certFile, keyFile: good.keyFile })?.cert).toEqual(good.pem);

    const missing = refusal(() => readTls({ certFile: join(dir, 'nope.crt'), keyFile: good.keyFile }));
    expect(missing).toMatchObject({ variable: 'TRIPLINE_TLS_CERT_FILE' });
    expect(missing.message).toContain('ENOENT');

    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate');
    expect(refusal(() => readTls({ certFile: garbage, keyFile: good.keyFile })).variable).toBe(
      'TRIPLINE_TLS_CERT_FILE',
    );
    expect(refusal(() => readTls({ certFile: good.certFile, keyFile: garbage })).variable).toBe(
      'TRIPLINE_TLS_KEY_FILE',
    );

    const mismatch = refusal(() => readTls({ certFile: good.certFile, keyFile: other.keyFile }));
    expect(mismatch.variable).toBe('TRIPLINE_TLS_KEY_FILE');
    expect(mismatch.message).toContain('the private key of the certificate in TRIPLINE_TLS_CERT_FILE (CN=localhost)');

    const inTwoDays = Date.now() + 2 * 86_400_000;
    const expired = refusal(() => readTls({ certFile: good.certFile, keyFile: good.keyFile }, inTwoDays));
    expect(expired.variable).toBe('TRIPLINE_TLS_CERT_FILE');
    expect(expired.message).toMatch(/a certificate valid now \(it is valid from .+ to .+\)/);
  });
});
