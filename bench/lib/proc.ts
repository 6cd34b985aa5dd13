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

export interface Resident {
  /** Sum of RSS: pages shared by the processes (the node binary) count once per process. */
  rss: number;
  /** Sum of PSS: shared pages divided among their sharers, so the machine's real cost. */
  pss: number;
}

/** Resident memory of the processes, in bytes (gone processes count 0). */
export async function residentBytes(pids: readonly number[]): Promise<Resident> {
  const total = { rss: 0, pss: 0 };
  for (const pid of pids) {
    try {
      const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
      total.rss += Number(/^Rss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0) * 1024;
      total.pss += Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0) * 1024;
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

/** Samples the resident memory of the processes until stopped; reports the peaks. */
export function sampleResidentPeak(pids: readonly number[], everyMs = 100): { stop(): Promise<Resident> } {
  const peak = { rss: 0, pss: 0 };
  const sample = async () => {
    const now = await residentBytes(pids);
    peak.rss = Math.max(peak.rss, now.rss);
    peak.pss = Math.max(peak.pss, now.pss);
  };
  let running = true;
  const loop = (async () => {
    while (running) {
      await sample();
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await sample();
      return peak;
    },
  };
}
