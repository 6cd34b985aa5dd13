// What the bench reads about the processes of a target from /proc: the process tree, resident
// memory and CPU time. Linux only, as the bench is.
import { readdir, readFile } from 'node:fs/promises';

// USER_HZ is 100 on every Linux the bench runs on; /proc/<pid>/stat counts CPU time in it.
const ticksPerSecond = 100;

async function readStat(pid: number): Promise<string[] | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after its closing ')'.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The process and every process below it. */
export async function processTree(root: number): Promise<number[]> {
  const parentOf = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const fields = await readStat(pid);
    // After the name: state, ppid, ...
    if (fields !== undefined) parentOf.set(pid, Number(fields[1]));
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, parent] of parentOf) if (parent === tree[i]) tree.push(pid);
  }
  return tree;
}

/** Sum of VmRSS over the processes, in bytes (gone processes count 0). */
export async function residentBytes(pids: readonly number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) {
    try {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
      if (match) total += Number(match[1]) * 1024;
    } catch {
      // exited
    }
  }
  return total;
}

/** User plus system CPU time the processes have used so far, in milliseconds. */
export async function cpuMillis(pids: readonly number[]): Promise<number> {
  let ticks = 0;
  for (const pid of pids) {
    const fields = await readStat(pid);
    // utime and stime are fields 14 and 15 of stat, 11 and 12 after the name.
    if (fields !== undefined) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks * 1000) / ticksPerSecond;
}

/** Samples the summed RSS of the processes until stopped; reports the peak. */
export function sampleResidentPeak(pids: readonly number[], everyMs = 100): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, await residentBytes(pids));
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return Math.max(peak, await residentBytes(pids));
    },
  };
}
