// What the listener accepts from clients: TLS 1.2 at least (some enterprise clients and middleboxes
// still speak no 1.3) with forward-secret AEAD suites only, and TLS 1.3, which has nothing else, first.
// The TLS 1.2 list is Mozilla's "intermediate" profile: ECDHE key exchange, GCM or ChaCha20-Poly1305,
// for ECDSA and RSA certificates alike. No CBC, no static RSA key exchange, no SHA-1 MACs.
import type { SecureContextOptions } from 'node:tls';

const tls13 = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];
const tls12 = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
];

export const clientFacingTls: Readonly<SecureContextOptions> = Object.freeze({
  minVersion: 'TLSv1.2',
  ciphers: [...tls13, ...tls12].join(':'),
  // Clients offer their preferences; ours are all strong, and the server's order puts AES-GCM (with
  // hardware support almost everywhere) first.
  honorCipherOrder: true,
});
