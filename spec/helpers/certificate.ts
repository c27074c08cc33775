/**
 * A self-signed certificate for localhost and 127.0.0.1 (RSA 2048, valid until 2126), kept beside
 * this file so that the TLS tests need no tool to make one. Test-only: its key is public.
 * Made with `openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost
 * -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 36500`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Certificate {
  key: Buffer;
  cert: Buffer;
  /** The files, for peers that read them from disk (Python's websockets). */
  keyPath: string;
  certPath: string;
}

let certificate: Certificate | undefined;

export function selfSignedCertificate(): Certificate {
  if (certificate) return certificate;
  const keyPath = fileURLToPath(new URL('./localhost-key.pem', import.meta.url));
  const certPath = fileURLToPath(new URL('./localhost-cert.pem', import.meta.url));
  certificate = { key: readFileSync(keyPath), cert: readFileSync(certPath), keyPath, certPath };
  return certificate;
}
