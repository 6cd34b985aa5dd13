// Who accepts the proxy's connections. Under node:cluster's default the primary accepts every one and
// hands it to a worker over IPC, so one event loop, the one that also runs the control plane, sits on
// the path of every new connection. From Node 22.12 (libuv 1.49, SO_REUSEPORT with balancing) each
// worker can bind its own socket on the same port and the kernel spreads new connections over them,
// so the primary is off that path. Node 20 ignores `reusePort`; there the primary accepts, as before.
// LLM_PROXY_ACCEPT=primary keeps the old path on a new Node (for comparing the two, or a kernel that
// does not balance SO_REUSEPORT sockets).

export type AcceptMode = 'workers' | 'primary';

/** Whether this runtime gives a cluster worker its own SO_REUSEPORT listener. */
export function reusePortSupported(nodeVersion = process.versions.node, platform = process.platform): boolean {
  const [major = 0, minor = 0] = nodeVersion.split('.').map(Number);
  // SO_REUSEPORT balances connections only on Linux; elsewhere the first socket would take them all.
  return platform === 'linux' && (major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12));
}

export function acceptMode(env: NodeJS.ProcessEnv = process.env, supported = reusePortSupported()): AcceptMode {
  return supported && env.LLM_PROXY_ACCEPT !== 'primary' ? 'workers' : 'primary';
}
