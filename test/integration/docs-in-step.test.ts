// The reference in docs/ cannot drift from the code (issue 16): every error the proxy makes has its
// row in the error table with the right status, every access-log flag is explained, and the metrics
// table names exactly the llm_proxy_* metrics a running cluster exposes.
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { refusedPort } from '../helpers/free-port.js';
import { startProxy, type ProxyProcess } from '../helpers/proxy-process.js';
import { proxyErrors } from '../../src/shared/errors.js';

const observability = readFileSync(new URL('../../docs/observability.md', import.meta.url), 'utf8');

/** The rows of the first Markdown table after `heading`, as arrays of cells. */
function tableAfter(text: string, heading: string): string[][] {
  const at = text.indexOf(heading);
  expect(at, heading).to.be.greaterThan(-1);
  const from = heading.startsWith('|') ? at : text.indexOf('\n| ', at) + 1;
  const end = text.indexOf('\n\n', from);
  return text
    .slice(from, end === -1 ? undefined : end)
    .split('\n')
    .slice(2)
    .map((row) => row.split('|').slice(1, -1).map((cell) => cell.trim()));
}

const codesIn = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);

describe('docs in step with the code', function () {
  it('the error table has every proxy error code with its status, and no other', function () {
    const documented = new Map<string, number>();
    for (const [status, codes] of tableAfter(observability, '## Errors')) {
      for (const code of codesIn(codes ?? '')) documented.set(code, Number(status));
    }
    const inCode = new Map(Object.entries(proxyErrors).map(([code, spec]) => [code, spec.status]));
    expect(Object.fromEntries(documented)).to.deep.equal(Object.fromEntries(inCode));
  });

  it('the access-log flag table explains every flag the proxy writes', function () {
    const documented = new Set(tableAfter(observability, '### Access-log codes').flatMap(([flag]) => codesIn(flag ?? '')));
    // The proxy's own errors, and the endings of an exchange the proxy did not answer itself.
    const written = new Set([...Object.values(proxyErrors).map((spec) => spec.flag), 'UC', 'DC', 'DT']);
    expect([...documented].sort()).to.deep.equal([...written].sort());
  });

  describe('metrics', function () {
    let proxy: ProxyProcess;
    before(async function () {
      // A shared store out of reach: its metrics exist too, and the proxy serves on without it.
      proxy = await startProxy({
        shared_store: { url: `redis://127.0.0.1:${await refusedPort()}`, connect_timeout: 0.2 },
        providers: [{ type: 'openai', host: 'docs.proxy.test', endpoint: '127.0.0.1', port: await refusedPort(), tls: false, api_key: 'sk-docs-upstream-0001' }],
      });
    });
    after(async function () {
      await proxy?.stop();
    });

    it('the metrics table names exactly the llm_proxy_* metrics /metrics exposes', async function () {
      const text = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
      const exposed = new Set([...text.matchAll(/^# TYPE (llm_proxy_\w+) /gm)].map((m) => m[1] as string));
      const documented = new Set(tableAfter(observability, '| metric | type | labels |').flatMap(([names]) => codesIn(names ?? '')).filter((name) => name.startsWith('llm_proxy_')));
      expect(exposed.size).to.be.greaterThan(10);
      expect([...documented].sort()).to.deep.equal([...exposed].sort());
    });
  });
});
