// How many workers `workers: auto` means: the cgroup CPU quota where one is set, else the cores the
// process may run on. Node 20's os.availableParallelism() honours the affinity mask (cpusets) but not
// CFS quotas (`docker run --cpus`, systemd `CPUQuota=`), so the quota is read from cgroupfs here.
// Runs once at startup in the primary; every failure means "no limit known", never a throw.

import { readFile, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';

export interface CgroupPaths {
  procSelfCgroup: string;
  cgroupRoot: string;
}

const defaultPaths: CgroupPaths = {
  procSelfCgroup: '/proc/self/cgroup',
  cgroupRoot: '/sys/fs/cgroup',
};

// The kernel's default CFS period; `cpu.max` always prints it, but a bare "max" or quota is valid input.
const defaultPeriodUs = 100_000;

interface CgroupLine {
  controllers: string[];
  path: string;
}

/** CPUs allowed by the quota (fractional, e.g. 0.5), or null when no quota is set or nothing is readable. */
export async function readCgroupCpuLimit(paths?: Partial<CgroupPaths>): Promise<number | null> {
  const { procSelfCgroup, cgroupRoot } = { ...defaultPaths, ...paths };
  const text = await readText(procSelfCgroup);
  if (text === null) return null;
  const lines = parseProcCgroup(text);

  // Hybrid hosts also list a `0::` line, but their unified tree is mounted elsewhere and holds no cpu
  // controller; cgroup.controllers at the root is what marks a pure v2 mount.
  const unified = lines.find((line) => line.controllers.length === 0);
  if (unified !== undefined && (await exists(`${cgroupRoot}/cgroup.controllers`))) {
    return smallest(await candidateDirs(cgroupRoot, unified.path), readCpuMax);
  }

  const cpuLine = lines.find((line) => line.controllers.includes('cpu'));
  if (cpuLine === undefined) return null;
  const mount = await findV1Mount(cgroupRoot, cpuLine.controllers);
  if (mount === null) return null;
  return smallest(await candidateDirs(mount, cpuLine.path), readCfsQuota);
}

export async function resolveWorkerCount(
  setting: 'auto' | number,
  paths?: Partial<CgroupPaths>,
): Promise<number> {
  return (await explainWorkerCount(setting, paths)).count;
}

/** The worker count and where it came from, for the start log (an operator checks `--cpus` there). */
export async function explainWorkerCount(setting: 'auto' | number, paths?: Partial<CgroupPaths>): Promise<{ count: number; from: string }> {
  if (setting !== 'auto') return { count: setting, from: 'configured' };
  const cores = availableParallelism();
  const limit = await readCgroupCpuLimit(paths);
  if (limit === null) return { count: cores, from: `${cores} usable cores, no CPU quota` };
  // A fractional quota still gets a whole worker: 0.5 CPU -> 1, 1.5 CPU -> 2.
  const count = Math.max(1, Math.min(cores, Math.ceil(limit)));
  return { count, from: `cgroup CPU quota of ${Number(limit.toFixed(2))} CPUs (${cores} usable cores)` };
}

/** `hierarchy-id:controller,list:/path` per line; v2's single line has an empty controller list. */
function parseProcCgroup(text: string): CgroupLine[] {
  const lines: CgroupLine[] = [];
  for (const raw of text.split('\n')) {
    const first = raw.indexOf(':');
    const second = first === -1 ? -1 : raw.indexOf(':', first + 1);
    if (second === -1) continue;
    const path = raw.slice(second + 1).trim();
    if (!path.startsWith('/')) continue;
    const list = raw.slice(first + 1, second);
    lines.push({ controllers: list === '' ? [] : list.split(','), path });
  }
  return lines;
}

/**
 * The process's cgroup dir and every ancestor up to the mount. When the dir is not there (the
 * cgroup namespace or mount does not match /proc/self/cgroup) only the mount itself is trusted; a
 * `..` segment means the process sits outside the namespace root, which is the same mismatch.
 */
async function candidateDirs(mount: string, cgroupPath: string): Promise<string[]> {
  const segments = cgroupPath.split('/').filter((segment) => segment !== '');
  if (segments.some((segment) => segment === '..' || segment === '.')) return [mount];
  if (!(await isDirectory(mount + (segments.length === 0 ? '' : `/${segments.join('/')}`)))) {
    return [mount];
  }
  const dirs: string[] = [];
  for (let depth = segments.length; depth >= 0; depth--) {
    dirs.push(depth === 0 ? mount : `${mount}/${segments.slice(0, depth).join('/')}`);
  }
  return dirs;
}

/** v1 mounts the cpu controller under its co-mounted list, e.g. `cpu,cpuacct`, often with a `cpu` alias. */
async function findV1Mount(root: string, controllers: string[]): Promise<string | null> {
  const names = new Set([controllers.join(','), 'cpu,cpuacct', 'cpu']);
  for (const name of names) {
    if (await isDirectory(`${root}/${name}`)) return `${root}/${name}`;
  }
  return null;
}

/** Nested limits all apply, so the tightest one along the path is the effective one. */
async function smallest(
  dirs: string[],
  read: (dir: string) => Promise<number | null>,
): Promise<number | null> {
  const limits = await Promise.all(dirs.map(read));
  let min: number | null = null;
  for (const limit of limits) {
    if (limit !== null && (min === null || limit < min)) min = limit;
  }
  return min;
}

/** v2 `cpu.max`: "max 100000" is unlimited, "50000 100000" is 0.5 CPU. */
async function readCpuMax(dir: string): Promise<number | null> {
  const text = await readText(`${dir}/cpu.max`);
  if (text === null) return null;
  const [quota, period, ...rest] = text.trim().split(/\s+/);
  if (quota === undefined || quota === 'max' || rest.length > 0) return null;
  return ratio(parseUint(quota), period === undefined ? defaultPeriodUs : parseUint(period));
}

/** v1 `cpu.cfs_quota_us` (-1 is unlimited) over `cpu.cfs_period_us`. */
async function readCfsQuota(dir: string): Promise<number | null> {
  const [quotaText, periodText] = await Promise.all([
    readText(`${dir}/cpu.cfs_quota_us`),
    readText(`${dir}/cpu.cfs_period_us`),
  ]);
  if (quotaText === null || periodText === null) return null;
  return ratio(parseUint(quotaText.trim()), parseUint(periodText.trim()));
}

function ratio(quota: number | null, period: number | null): number | null {
  if (quota === null || period === null || quota <= 0 || period <= 0) return null;
  return quota / period;
}

/** Digits only: "-1", "", "12abc" and friends are not a quota. */
function parseUint(text: string): number | null {
  return /^\d{1,15}$/.test(text) ? Number(text) : null;
}

async function readText(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return null;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

async function isDirectory(dir: string): Promise<boolean> {
  try {
    return (await stat(dir)).isDirectory();
  } catch {
    return false;
  }
}
