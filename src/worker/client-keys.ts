// Client-key checking. Keys are compared as SHA-256 digests with timingSafeEqual against every
// configured key, without an early exit, so the time taken says nothing about how close a guess was.
import { hash, timingSafeEqual } from 'node:crypto';
import type { ClientKeySpec } from '../shared/snapshot.js';

export interface ClientKeyMatcher {
  /** The configured key the candidate equals, or undefined. */
  match(candidate: string): ClientKeySpec | undefined;
}

export function createClientKeyMatcher(keys: readonly ClientKeySpec[]): ClientKeyMatcher {
  const digests = keys.map((spec) => ({ spec, digest: digest(spec.key) }));
  return {
    match(candidate) {
      const candidateDigest = digest(candidate);
      let found: ClientKeySpec | undefined;
      for (const entry of digests) {
        if (timingSafeEqual(entry.digest, candidateDigest) && found === undefined) found = entry.spec;
      }
      return found;
    },
  };
}

function digest(key: string): Buffer {
  return hash('sha256', key, 'buffer') as unknown as Buffer;
}
