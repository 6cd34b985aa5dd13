import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  explainWorkerCount,
  readCgroupCpuLimit,
  resolveWorkerCount,
  type CgroupPaths,
} from '../../src/primary/cpu-count.js';

const fixturesDir = fileURLToPath(new URL('../fixtures/cgroup/', import.meta.url));

function fixture(name: string): CgroupPaths {
  return {
    procSelfCgroup: `${fixturesDir}${name}/proc-self-cgroup`,
    cgroupRoot: `${fixturesDir}${name}/root`,
  };
}

describe('cpu-count', () => {
  describe('readCgroupCpuLimit, cgroup v2', () => {
    it('reads the quota at the container root when the path is /', async () => {
      expect(await readCgroupCpuLimit(fixture('v2-root-quota'))).to.equal(1.5);
    });

    it('treats "max" as no quota', async () => {
      expect(await readCgroupCpuLimit(fixture('v2-unlimited'))).to.equal(null);
    });

    it('takes a parent slice limit when the leaf is unlimited', async () => {
      expect(await readCgroupCpuLimit(fixture('v2-nested'))).to.equal(1);
    });

    it('takes the smallest limit along the path', async () => {
      expect(await readCgroupCpuLimit(fixture('v2-nested-leaf-tighter'))).to.equal(0.5);
    });

    it('falls back to the root cpu.max when the cgroup path is not under the mount', async () => {
      expect(await readCgroupCpuLimit(fixture('v2-path-missing'))).to.equal(2);
    });

    it('returns null for garbage in cpu.max', async () => {
      expect(await readCgroupCpuLimit(fixture('v2-garbage'))).to.equal(null);
    });
  });

  describe('readCgroupCpuLimit, cgroup v1', () => {
    it('reads quota over period under cpu,cpuacct (hybrid 0:: line ignored)', async () => {
      expect(await readCgroupCpuLimit(fixture('v1-cpu-cpuacct'))).to.equal(0.5);
    });

    it('treats a quota of -1 as no quota', async () => {
      expect(await readCgroupCpuLimit(fixture('v1-unlimited'))).to.equal(null);
    });

    it('finds a mount named just cpu', async () => {
      expect(await readCgroupCpuLimit(fixture('v1-cpu-only'))).to.equal(2);
    });

    it('falls back to the mount itself when the cgroup path is missing', async () => {
      expect(await readCgroupCpuLimit(fixture('v1-path-missing'))).to.equal(1.5);
    });

    it('returns null for garbage quota and period files', async () => {
      expect(await readCgroupCpuLimit(fixture('v1-garbage'))).to.equal(null);
    });
  });

  describe('readCgroupCpuLimit, unreadable input', () => {
    it('returns null for a garbage /proc/self/cgroup', async () => {
      expect(await readCgroupCpuLimit(fixture('garbage-proc'))).to.equal(null);
    });

    it('returns null when nothing exists', async () => {
      expect(await readCgroupCpuLimit(fixture('does-not-exist'))).to.equal(null);
    });
  });

  describe('resolveWorkerCount', () => {
    const cores = availableParallelism();

    it('returns an explicit number as is', async () => {
      expect(await resolveWorkerCount(3)).to.equal(3);
    });

    it('gives a fractional quota below one CPU one worker', async () => {
      expect(await resolveWorkerCount('auto', fixture('v1-cpu-cpuacct'))).to.equal(1);
    });

    it('rounds a fractional quota up, capped by the usable cores', async () => {
      expect(await resolveWorkerCount('auto', fixture('v2-root-quota'))).to.equal(Math.min(cores, 2));
    });

    it('uses the usable cores when no quota is set', async () => {
      expect(await resolveWorkerCount('auto', fixture('v2-unlimited'))).to.equal(cores);
      expect(await resolveWorkerCount('auto', fixture('does-not-exist'))).to.equal(cores);
    });
  });
});

describe('cpu-count: what the start log says', () => {
  it('names the cgroup quota it followed (docker run --cpus 0.5 gives 1 worker)', async () => {
    const { count, from } = await explainWorkerCount('auto', fixture('v2-nested-leaf-tighter'));
    expect(count).to.equal(1);
    expect(from).to.match(/^cgroup CPU quota of 0\.5 CPUs/);
  });

  it('a quota of 2 CPUs (docker run --cpus 2) gives 2 workers where 2 cores are usable', async () => {
    expect((await explainWorkerCount('auto', fixture('v2-path-missing'))).count).to.equal(Math.min(2, availableParallelism()));
  });

  it('says when there is no quota, and when the count was configured', async () => {
    expect((await explainWorkerCount('auto', fixture('v2-unlimited'))).from).to.equal(`${availableParallelism()} usable cores, no CPU quota`);
    expect(await explainWorkerCount(3)).to.deep.equal({ count: 3, from: 'configured' });
  });
});
