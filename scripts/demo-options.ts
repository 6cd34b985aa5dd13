// The demo's settings: ports and directory from flags (`npm run demo -- --port 8444`) or the
// environment (DEMO_PORT=8444 npm run demo), flags first.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

export interface DemoOptions {
  /** TLS listener port on 127.0.0.1; 0 lets the system pick a free one. */
  port: number;
  /** Admin listener port (/metrics, /status) on 127.0.0.1; 0 lets the system pick. */
  adminPort: number;
  /** Where ca.pem, cert.pem, key.pem and config.yml go. */
  dir: string;
}

export const demoUsage = `Usage: npm run demo [-- --port N] [-- --admin-port N] [-- --dir DIR]
  --port N        TLS port of the proxy on 127.0.0.1 (env DEMO_PORT, default 8443; 0 = any free port)
  --admin-port N  admin port: /metrics, /status (env DEMO_ADMIN_PORT, default 9090; 0 = any free port)
  --dir DIR       where the certificates and config.yml are written (env DEMO_DIR, default demo/)`;

/** A usage mistake: the demo prints it with the usage text and exits 2, like the CLI. */
export class DemoUsageError extends Error {}

function parsePort(value: string, name: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65_535) throw new DemoUsageError(`${name} must be a port number from 0 to 65535, not "${value}"`);
  return port;
}

export function parseDemoOptions(argv: string[], env: NodeJS.ProcessEnv, root: string): DemoOptions | 'help' {
  let values: { port?: string; 'admin-port'?: string; dir?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { port: { type: 'string' }, 'admin-port': { type: 'string' }, dir: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (err) {
    throw new DemoUsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const port = values.port ?? env.DEMO_PORT;
  const adminPort = values['admin-port'] ?? env.DEMO_ADMIN_PORT;
  const options: DemoOptions = {
    port: port === undefined ? 8443 : parsePort(port, values.port === undefined ? 'DEMO_PORT' : '--port'),
    adminPort: adminPort === undefined ? 9090 : parsePort(adminPort, values['admin-port'] === undefined ? 'DEMO_ADMIN_PORT' : '--admin-port'),
    dir: resolve(values.dir ?? env.DEMO_DIR ?? join(root, 'demo')),
  };
  if (options.port !== 0 && options.port === options.adminPort) throw new DemoUsageError(`the proxy and the admin listener need two ports, both are ${options.port}`);
  return options;
}
