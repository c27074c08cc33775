/**
 * A self-signed certificate for localhost and 127.0.0.1, valid for one day, made with openssl
 * (Debian's `openssl`; .ci/run installs it) once per test process. The files stay until the
 * process exits, for peers that read them from disk (Python's websockets).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Certificate {
  key: Buffer;
  cert: Buffer;
  keyPath: string;
  certPath: string;
}

let certificate: Certificate | undefined;

export function selfSignedCertificate(): Certificate {
  certificate ??= makeCertificate();
  return certificate;
}

function makeCertificate(): Certificate {
  const dir = mkdtempSync(join(tmpdir(), 'wspoll-cert-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '1', '-keyout', keyPath, '-out', certPath],
    { stdio: 'ignore', timeout: 20_000 },
  );
  return { key: readFileSync(keyPath), cert: readFileSync(certPath), keyPath, certPath };
}
