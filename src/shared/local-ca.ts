// A throwaway certificate authority and one server certificate it signs, for trying the proxy out
// (`llm-proxy cert`, `npm run demo`). Clients verify the server against ca.pem instead of being told
// to skip verification, so a trial exercises the same TLS path production does.
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import {
  bitString,
  booleanTrue,
  explicit,
  implicit,
  objectIdentifier,
  octetString,
  sequence,
  set,
  smallInteger,
  time,
  unsignedInteger,
  utf8String,
  type Der,
} from './der.js';

export interface LocalCertificates {
  /** PEM of the CA certificate: what clients are given to trust. */
  caCert: string;
  caKey: string;
  /** PEM of the server certificate alone (clients hold the CA, so no chain is needed). */
  cert: string;
  key: string;
  notAfter: Date;
}

export const defaultCertificateHosts: readonly string[] = ['localhost', '127.0.0.1', '::1'];

const dayMs = 24 * 60 * 60 * 1000;
// 825 days is the longest lifetime macOS and iOS accept for a server certificate from any CA.
const serverLifetimeMs = 825 * dayMs;
const caLifetimeMs = 10 * 365 * dayMs;
// ECDSA P-256: keys in a millisecond, handshakes far cheaper than RSA-2048, accepted by every client.
const ecdsaWithSha256 = sequence(objectIdentifier('1.2.840.10045.4.3.2'));
const dnsLabel = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const dnsName = new RegExp(`^(?:\\*\\.)?${dnsLabel}(?:\\.${dnsLabel})*$`);

/** The host normalized for a subjectAltName (lower case DNS name, `*.` wildcard, or IP), or undefined. */
export function parseCertificateHost(value: string): string | undefined {
  if (isIP(value) !== 0) return value.includes('%') ? undefined : value;
  const name = value.toLowerCase();
  return name.length <= 253 && dnsName.test(name) ? name : undefined;
}

function ipBytes(address: string): Buffer {
  if (isIP(address) === 4) return Buffer.from(address.split('.').map(Number));
  // IPv6: expand `::`, and a trailing dotted quad becomes the last two groups.
  let text = address;
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad?.[1]) {
    const [a = 0, b = 0, c = 0, d = 0] = quad[1].split('.').map(Number);
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const bytes = Buffer.alloc(16);
  all.forEach((group, i) => bytes.writeUInt16BE(parseInt(group, 16), i * 2));
  return bytes;
}

function commonName(cn: string): Der {
  return sequence(set(sequence(objectIdentifier('2.5.4.3'), utf8String(cn))));
}

function extension(oid: string, critical: boolean, value: Der): Der {
  return critical ? sequence(objectIdentifier(oid), booleanTrue(), octetString(value)) : sequence(objectIdentifier(oid), octetString(value));
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the public key bits (the uncompressed EC point). */
function keyIdentifier(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x ?? '', 'base64url'), Buffer.from(jwk.y ?? '', 'base64url')]);
  return createHash('sha1').update(point).digest();
}

function serialNumber(): Der {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return unsignedInteger(bytes);
}

interface CertificateFields {
  issuer: Der;
  subject: Der;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  signingKey: KeyObject;
  extensions: Der[];
}

function issue(fields: CertificateFields): string {
  const tbs = sequence(
    explicit(0, smallInteger(2)),
    serialNumber(),
    ecdsaWithSha256,
    fields.issuer,
    sequence(time(fields.notBefore), time(fields.notAfter)),
    fields.subject,
    fields.publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, sequence(...fields.extensions)),
  );
  const signature = sign('sha256', tbs, fields.signingKey);
  const der = sequence(tbs, ecdsaWithSha256, bitString(signature));
  const base64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${base64}\n-----END CERTIFICATE-----\n`;
}

const pkcs8 = (key: KeyObject): string => key.export({ type: 'pkcs8', format: 'pem' }).toString();

/** A new CA and a server certificate for `hosts` (already checked by parseCertificateHost). */
export function createLocalCertificates(hosts: readonly string[], now = new Date()): LocalCertificates {
  if (hosts.length === 0) throw new Error('a server certificate needs at least one host');
  // Valid from a day back, so a client whose clock runs behind (a VM, a container) does not see
  // "not yet valid".
  const notBefore = new Date(now.getTime() - dayMs);
  const ca = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const caName = commonName('llm-proxy local CA (for trials only)');
  const caKeyId = keyIdentifier(ca.publicKey);
  const caCert = issue({
    issuer: caName,
    subject: caName,
    notBefore,
    notAfter: new Date(now.getTime() + caLifetimeMs),
    publicKey: ca.publicKey,
    signingKey: ca.privateKey,
    extensions: [
      extension('2.5.29.19', true, sequence(booleanTrue(), smallInteger(0))),
      // keyCertSign (bit 5) and cRLSign (bit 6): 0b0000011x, one unused bit.
      extension('2.5.29.15', true, bitString(Buffer.from([0x06]), 1)),
      extension('2.5.29.14', false, octetString(caKeyId)),
    ],
  });

  const server = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const altNames = hosts.map((host) => (isIP(host) === 0 ? implicit(2, Buffer.from(host, 'ascii')) : implicit(7, ipBytes(host))));
  const notAfter = new Date(now.getTime() + serverLifetimeMs);
  const cert = issue({
    issuer: caName,
    subject: commonName(hosts[0] ?? 'localhost'),
    notBefore,
    notAfter,
    publicKey: server.publicKey,
    signingKey: ca.privateKey,
    extensions: [
      extension('2.5.29.19', true, sequence()),
      // digitalSignature (bit 0) alone: an ECDSA key signs the handshake and enciphers nothing.
      extension('2.5.29.15', true, bitString(Buffer.from([0x80]), 7)),
      extension('2.5.29.37', false, sequence(objectIdentifier('1.3.6.1.5.5.7.3.1'))),
      extension('2.5.29.17', false, sequence(...altNames)),
      extension('2.5.29.14', false, octetString(keyIdentifier(server.publicKey))),
      extension('2.5.29.35', false, sequence(implicit(0, caKeyId))),
    ],
  });
  return { caCert, caKey: pkcs8(ca.privateKey), cert, key: pkcs8(server.privateKey), notAfter };
}
