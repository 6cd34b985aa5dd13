// A port on 127.0.0.1 that nothing listens on (bound once, then released): connecting to it is
// refused, which is how tests stand in for a provider that is down.
import { connect, createServer } from 'node:net';

export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address !== null ? address.port : 0;
}

/**
 * A port nothing listens on that stays so for the whole run: one below the ephemeral range (which
 * starts at 32768 on Linux), so no test server or proxy bound to port 0 can be handed it later, as
 * could happen to a released closedPort() (an upstream "refusing connections" then answered TLS).
 */
export async function refusedPort(): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await isRefused(port)) return port;
  }
  throw new Error('no refused port found in 20000-31999');
}

/** True when a connection to 127.0.0.1:port is refused (nothing listens). */
export function isRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}
