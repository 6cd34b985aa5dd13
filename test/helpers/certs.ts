// Throwaway PKI for tests: a self-signed CA and a server certificate it signs, so TLS tests exercise
// real chain verification (clients get `ca`, never `rejectUnauthorized: false`).
import { KeyObject, webcrypto } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import type * as X509 from '@peculiar/x509';

export interface PemPair {
  cert: string;
  key: string;
}

export interface CertificateSet {
  ca: PemPair;
  server: PemPair;
}

export interface CertificateOptions {
  /** Extra subjectAltNames: IP addresses when they parse as one, DNS names otherwise. */
  names?: string[];
}

export interface CertificateFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

// ECDSA P-256: key generation and handshakes are an order of magnitude faster than RSA-2048,
// which matters when every integration suite mints its own set.
const keyAlgorithm: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const signingAlgorithm: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const dayMs = 24 * 60 * 60 * 1000;

type MetadataMap = Map<unknown, unknown>;
interface ReflectMetadataApi {
  getMetadata?: (key: unknown, target: object) => unknown;
  getOwnMetadata?: (key: unknown, target: object) => unknown;
  defineMetadata?: (key: unknown, value: unknown, target: object) => void;
}

// @peculiar/x509 pulls in tsyringe, which throws at load time unless a Reflect metadata polyfill
// (reflect-metadata) is present, and nothing in our dependency tree provides one. tsyringe only calls
// these three functions, and x509 stores no metadata of its own, so a WeakMap is enough.
function ensureReflectMetadata(): void {
  const api = Reflect as unknown as ReflectMetadataApi;
  if (typeof api.getMetadata === 'function') return;
  const store = new WeakMap<object, MetadataMap>();
  api.getOwnMetadata = (key, target) => store.get(target)?.get(key);
  api.getMetadata = (key, target) => {
    for (let t: object | null = target; t !== null; t = Object.getPrototypeOf(t) as object | null) {
      const value = store.get(t)?.get(key);
      if (value !== undefined) return value;
    }
    return undefined;
  };
  api.defineMetadata = (key, value, target) => {
    const map = store.get(target) ?? new Map<unknown, unknown>();
    map.set(key, value);
    store.set(target, map);
  };
}

let x509Loaded: Promise<typeof X509> | undefined;

// Loaded lazily so importing this module has no side effects until certificates are wanted.
function loadX509(): Promise<typeof X509> {
  x509Loaded ??= (async () => {
    ensureReflectMetadata();
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto);
    return x509;
  })();
  return x509Loaded;
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(keyAlgorithm, true, ['sign', 'verify']);
}

function privateKeyPem(key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

function subjectAltNames(extra: readonly string[]): X509.JsonGeneralName[] {
  const names = ['localhost', '*.localhost', '127.0.0.1', '::1', ...extra];
  const unique = [...new Set(names)];
  return unique.map((value) => ({ type: isIP(value) === 0 ? 'dns' : 'ip', value }));
}

function randomSerial(): string {
  // Positive 16-byte serial: clear the top bit so DER does not read it as negative.
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

export async function createCertificates(opts: CertificateOptions = {}): Promise<CertificateSet> {
  const x509 = await loadX509();
  // Valid from yesterday so a clock a few hours behind (containers, CI) does not see "not yet valid".
  const notBefore = new Date(Date.now() - dayMs);
  const notAfter = new Date(notBefore.getTime() + 10 * 365 * dayMs);

  const caKeys = await generateKeys();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: 'CN=llm-proxy test CA',
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  const serverKeys = await generateKeys();
  const serverCert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: 'CN=localhost',
    issuer: caCert.subject,
    notBefore,
    notAfter,
    publicKey: serverKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(subjectAltNames(opts.names ?? [])),
      await x509.SubjectKeyIdentifierExtension.create(serverKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  return {
    ca: { cert: caCert.toString('pem'), key: privateKeyPem(caKeys.privateKey) },
    server: { cert: serverCert.toString('pem'), key: privateKeyPem(serverKeys.privateKey) },
  };
}

/** Writes ca.pem, cert.pem (the server certificate alone) and key.pem into dir. */
export async function writeCertificates(dir: string, opts: CertificateOptions = {}): Promise<CertificateFiles> {
  const set = await createCertificates(opts);
  const absDir = resolve(dir);
  await mkdir(absDir, { recursive: true });
  const files: CertificateFiles = {
    caFile: join(absDir, 'ca.pem'),
    certFile: join(absDir, 'cert.pem'),
    keyFile: join(absDir, 'key.pem'),
  };
  await Promise.all([
    writeFile(files.caFile, set.ca.cert),
    writeFile(files.certFile, set.server.cert),
    writeFile(files.keyFile, set.server.key, { mode: 0o600 }),
  ]);
  return files;
}
