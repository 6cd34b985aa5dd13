// What an operator does to a running cluster and how they look at it from outside: rewrite the
// config in place, count the worker processes, see which certificate a new connection gets, see
// whether the port still accepts. Nothing here reaches into the proxy's own modules.
import { execFile, type ChildProcess } from 'node:child_process';
import { rename } from 'node:fs/promises';
import { createServer, connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { removeConfigDir, writeConfig } from './proxy-process.js';

/**
 * Replaces `file` with a new config in one rename, so a reload never reads half a file. Goes through
 * writeConfig so the keys it holds are registered for the end-of-suite secrets check.
 */
export async function rewriteConfig(file: string, config: Record<string, unknown>): Promise<void> {
  const written = await writeConfig(config);
  await rename(written, file);
  await removeConfigDir(written);
}

/** A port that was free a moment ago (for tests that must name the port before the proxy binds it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

/** Pids of the direct children of `pid` (cluster workers are children of the primary). */
export function childPids(pid: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    execFile('ps', ['--ppid', String(pid), '-o', 'pid='], (err, stdout) => {
      // ps exits 1 when nothing matched: no children is an answer, not an error.
      if (err && (err as { code?: unknown }).code !== 1) return reject(err);
      resolve(stdout.split('\n').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0));
    });
  });
}

/** Polls `check` until it returns a value other than undefined; throws with `what` at the deadline. */
export async function pollUntil<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined> | T | undefined, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}

/** SHA-256 fingerprint of the certificate a NEW TLS connection to the port is given. */
export function peerFingerprint(port: number, caPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: caPem, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      resolve(fingerprint);
    });
    socket.once('error', reject);
  });
}

/** Opens a plain TCP connection: 'accepted' or the error code (ECONNREFUSED when nobody listens). */
export function tcpConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.setTimeout(2_000, () => {
      socket.destroy();
      resolve('timeout');
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve('accepted');
    });
    socket.once('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message));
  });
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

/** Resolves when the process exits (at once if it already has), with the time it was seen. */
export function exitOf(child: ChildProcess): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode, at: Date.now() });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
}
