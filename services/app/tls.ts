/**
 * TLS on Tripline's own servers (the API, the OTLP receiver, the MCP gateway), for deployments without a
 * TLS-terminating proxy in front: a PEM certificate chain and its private key, read and checked once at start-up.
 * A health endpoint (processors) stays plain HTTP on its loopback address.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { invalid } from '../shared/env.ts';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** What Node's TLS server takes: the chain, leaf first, and the leaf's key. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

const CERT_VARIABLE = 'TRIPLINE_TLS_CERT_FILE';
const KEY_VARIABLE = 'TRIPLINE_TLS_KEY_FILE';

function readFile(variable: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw invalid(variable, path, `a readable file (${reason})`);
  }
}

/**
 * Reads and checks the certificate and key: the certificate parses, the key parses (unencrypted PEM), the key is
 * the certificate's, and the certificate is valid now. Each failure names the variable to fix.
 */
export function readTls(files: TlsFiles | undefined, nowMs = Date.now()): TlsMaterial | undefined {
  if (files === undefined) return undefined;
  const cert = readFile(CERT_VARIABLE, files.certFile);
  const key = readFile(KEY_VARIABLE, files.keyFile);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch {
    throw invalid(CERT_VARIABLE, files.certFile, 'a PEM certificate (its chain after it)');
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw invalid(KEY_VARIABLE, files.keyFile, 'an unencrypted PEM private key');
  }
  if (!leaf.checkPrivateKey(privateKey))
    throw invalid(
      KEY_VARIABLE,
      files.keyFile,
      `the private key of the certificate in ${CERT_VARIABLE} (${leaf.subject})`,
    );
  if (Date.parse(leaf.validTo) <= nowMs || Date.parse(leaf.validFrom) > nowMs)
    throw invalid(
      CERT_VARIABLE,
      files.certFile,
      `a certificate valid now (it is valid from ${leaf.validFrom} to ${leaf.validTo})`,
    );
  return { cert, key };
}
