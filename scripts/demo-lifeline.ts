// How the demo knows when to stop, and whether it may start. `npm run demo` is a chain (npm, sh, tsx,
// this script) and a signal to its top reaches only the top: npm passes SIGTERM to its sh and no
// further, so tsx and this script would live on as orphans. This script therefore watches the chain
// that launched it and stops when any link of it is gone.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

interface ProcStat {
  state: string;
  ppid: number;
  pgrp: number;
  startTime: string;
}

/** /proc/PID/stat (Linux), or undefined where there is none. */
function procStat(pid: number | 'self'): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may itself hold spaces or parentheses.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', ppid: Number(fields[1]), pgrp: Number(fields[2]), startTime: fields[19] ?? '' };
  } catch {
    return undefined;
  }
}

/**
 * Calls onGone once when the process chain that started this one breaks. On Linux the chain is
 * every ancestor in this process group (a shell with job control gives `npm run demo` a group of
 * its own, so that is npm, its sh and tsx), each identified by its start time so a reused pid does
 * not pass for it. Elsewhere, the parent alone: reparenting changes process.ppid.
 */
export function watchLaunchChain(onGone: (why: string) => void, intervalMs = 250): () => void {
  const self = procStat('self');
  const chain: { pid: number; startTime: string }[] = [];
  if (self !== undefined) {
    for (let pid = self.ppid; pid > 1; ) {
      const stat = procStat(pid);
      if (stat === undefined || stat.pgrp !== self.pgrp) break;
      chain.push({ pid, startTime: stat.startTime });
      pid = stat.ppid;
    }
  }
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (self === undefined) {
      if (process.ppid !== parent) onGone(`its parent (pid ${parent}) is gone`);
      return;
    }
    for (const link of chain) {
      const stat = procStat(link.pid);
      if (stat === undefined || stat.startTime !== link.startTime || stat.state === 'Z') {
        clearInterval(timer);
        onGone(`pid ${link.pid}, which started it, is gone`);
        return;
      }
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** True when nothing listens on 127.0.0.1:port (or on the wildcard address, which covers it). */
export function portIsFree(port: number): Promise<boolean> {
  if (port === 0) return Promise.resolve(true);
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') resolve(false);
      else reject(err);
    });
    probe.listen({ port, host: '127.0.0.1', exclusive: true }, () => probe.close(() => resolve(true)));
  });
}
