// The reload thread is started for a reload and let go once reloads stop coming: kept for good it
// held 23 MB of the primary's resident memory. Seen from outside, as OS threads of this process.
import { readdir } from 'node:fs/promises';
import { expect } from 'chai';
import type { ConfigLoader } from '../../src/primary/config-thread.js';
import { removeConfigDir, writeConfig } from '../helpers/proxy-process.js';

// The built module: the thread runs the file it was loaded from, and a worker thread does not get
// tsx's loader for a .ts one.
const built = '../../dist/primary/config-thread.js';
const { createConfigLoader } = (await import(built)) as { createConfigLoader(idleMs?: number): ConfigLoader };

const threads = async () => (await readdir('/proc/self/task')).length;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('config thread: started for a reload, let go when idle', function () {
  this.timeout(20_000);

  it('answers a job, and its thread is gone once the idle time has passed', async function () {
    const file = await writeConfig({ providers: [{ type: 'openai', host: 'thread.proxy.test', endpoint: '127.0.0.1', port: 9, tls: false, api_key: 'sk-test-config-thread-0001' }] });
    const loader = createConfigLoader(300);
    try {
      const before = await threads();
      const result = await loader.load({ configFile: file, version: 1, ticketKeys: 'a'.repeat(64), workers: 1, overrides: {} });
      expect(result.ok, JSON.stringify(result)).to.equal(true);
      const during = await threads();
      expect(during, 'threads while the loader is warm').to.be.greaterThan(before);
      // A second job soon after reuses it.
      expect((await loader.load({ configFile: file, version: 2, ticketKeys: 'a'.repeat(64), workers: 1, overrides: {} })).ok).to.equal(true);
      expect(await threads()).to.equal(during);
      await sleep(1_000);
      expect(await threads(), 'threads after the idle time').to.be.lessThan(during);
      // And a later job starts a fresh one.
      expect((await loader.load({ configFile: file, version: 3, ticketKeys: 'a'.repeat(64), workers: 1, overrides: {} })).ok).to.equal(true);
    } finally {
      await loader.close();
      await removeConfigDir(file);
    }
  });
});
