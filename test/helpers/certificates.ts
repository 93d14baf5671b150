/**
 * Self-signed certificates for tests of Tripline's TLS (openssl, which scripts/provision-tests.sh provides): an
 * ECDSA P-256 key and a certificate for `localhost` and 127.0.0.1, valid for a day.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCertificate {
  certFile: string;
  keyFile: string;
  /** The certificate's PEM: a client trusts it as its CA. */
  pem: Buffer;
}

export function makeCertificate(dir: string, name = 'server'): TestCertificate {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      `/CN=localhost`,
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'pipe' },
  );
  return { certFile, keyFile, pem: readFileSync(certFile) };
}
