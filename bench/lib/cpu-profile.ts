// Reads V8 .cpuprofile files (node --cpu-prof) and says where the time went: the functions with the
// most self time, and the share of each code area (our source, undici, Node's TLS/HTTP internals,
// logging, GC). The same files open as flame graphs in Chrome DevTools or speedscope.
import { readFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  busyMs: number;
  topSelf: { name: string; where: string; ms: number; share: number }[];
  areas: { area: string; ms: number; share: number }[];
}

/** Which part of the stack a frame belongs to, by its script URL. */
function areaOf(url: string, name: string): string {
  if (name === '(garbage collector)') return 'GC';
  if (name === '(idle)') return 'idle';
  if (name === '(program)') return 'V8/native (program)';
  if (url.includes('node_modules/undici')) return 'undici';
  if (url.includes('node_modules/pino') || url.includes('node_modules/sonic-boom') || url.includes('fast-json-stringify')) return 'logging (pino)';
  if (url.includes('node_modules/')) return 'other dependencies';
  if (url.includes('/src/') || url.includes('/dist/')) return 'llm-proxy';
  if (/node:internal\/(http2|tls|net|stream_base|streams|_tls|crypto)|node:(tls|net|_tls_wrap)/.test(url)) return 'node: tls/net/streams/http2';
  if (/node:(_http|http)|node:internal\/http/.test(url)) return 'node: http/1.1';
  if (url.startsWith('node:')) return 'node: other';
  return url === '' ? 'native' : 'other';
}

export async function summariseProfile(file: string, top = 25): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const totalUs = profile.endTime - profile.startTime;
  const perFunction = new Map<string, { name: string; where: string; us: number }>();
  const perArea = new Map<string, number>();
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const frame = (byId.get(id) as ProfileNode).callFrame;
    const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
    const area = areaOf(frame.url, name);
    if (area === 'idle') {
      idleUs += us;
      continue;
    }
    perArea.set(area, (perArea.get(area) ?? 0) + us);
    const where = frame.url === '' ? '' : `${frame.url.replace(/^file:\/\/.*?\/(node_modules|src|dist)\//, '$1/')}:${frame.lineNumber + 1}`;
    const key = `${name}@${where}`;
    const entry = perFunction.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    perFunction.set(key, entry);
  }
  const busyUs = totalUs - idleUs;
  return {
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    topSelf: [...perFunction.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, ms: f.us / 1000, share: f.us / busyUs })),
    areas: [...perArea.entries()].sort((a, b) => b[1] - a[1]).map(([area, us]) => ({ area, ms: us / 1000, share: us / busyUs })),
  };
}

export function renderProfile(file: string, summary: ProfileSummary): string {
  const lines = [`${file}: ${summary.busyMs.toFixed(0)} ms busy of ${summary.totalMs.toFixed(0)} ms`, '  by area (self time):'];
  for (const a of summary.areas) lines.push(`    ${(a.share * 100).toFixed(1).padStart(5)}%  ${a.area}`);
  lines.push('  top functions (self time):');
  for (const f of summary.topSelf) lines.push(`    ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.name}  ${f.where}`);
  return lines.join('\n');
}
