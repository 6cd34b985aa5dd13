// Issue 14, part 3: client keys looked up by digest, whatever their number. What a request's key
// resolves to (which configured entry, with its label and limits) is what auth and rate limiting
// rest on, so these check identity, not just "some key matched".
import { expect } from 'chai';
import type { ClientKeySpec } from '../../src/shared/snapshot.js';
import { createClientKeyMatcher, indexClientKeys } from '../../src/worker/client-keys.js';

function spec(key: string, label = `label-of-${key}`): ClientKeySpec {
  return { key, label, limit: undefined };
}

describe('client key matcher', function () {
  const keys = Array.from({ length: 10_000 }, (_, i) => spec(`sk-client-${String(i).padStart(5, '0')}-f3a9c1d0e7b2`));
  const global = indexClientKeys(keys);
  const matcher = createClientKeyMatcher(global);

  it('finds the configured entry itself among 10,000 keys: the first, a middle and the last', function () {
    for (const i of [0, 4_999, 9_999]) expect(matcher.match(`sk-client-${String(i).padStart(5, '0')}-f3a9c1d0e7b2`)).to.equal(keys[i]);
  });

  it('refuses a near miss: one character changed, one short, one extra, another case', function () {
    const real = 'sk-client-04999-f3a9c1d0e7b2';
    for (const guess of [`${real.slice(0, -1)}3`, real.slice(0, -1), `${real}0`, real.toUpperCase(), ` ${real}`]) {
      expect(matcher.match(guess), guess).to.equal(undefined);
    }
  });

  it('refuses an empty string', function () {
    expect(matcher.match('')).to.equal(undefined);
  });

  it('a key listed globally and on the route resolves to the global entry (global keys come first)', function () {
    const shared = 'sk-client-listed-twice-0001';
    const globalEntry = spec(shared, 'global-entry');
    const routeEntry = spec(shared, 'route-entry');
    const both = createClientKeyMatcher(indexClientKeys([globalEntry]), indexClientKeys([spec('sk-client-route-only-0001'), routeEntry]));
    expect(both.match(shared)).to.equal(globalEntry);
    expect(both.match('sk-client-route-only-0001')?.label).to.equal('label-of-sk-client-route-only-0001');
  });

  it('within one list the first of two equal keys is kept', function () {
    const first = spec('sk-client-dup-0001', 'first');
    const index = indexClientKeys([first, spec('sk-client-dup-0001', 'second')]);
    expect(index.size).to.equal(1);
    expect(createClientKeyMatcher(index).match('sk-client-dup-0001')).to.equal(first);
  });

  it('one shared global index serves every route, and a route key opens only its own route', function () {
    const routeA = createClientKeyMatcher(global, indexClientKeys([spec('sk-client-route-a-0001')]));
    const routeB = createClientKeyMatcher(global, indexClientKeys([spec('sk-client-route-b-0001')]));
    expect(routeA.match('sk-client-route-a-0001')?.key).to.equal('sk-client-route-a-0001');
    expect(routeB.match('sk-client-route-a-0001')).to.equal(undefined);
    expect(routeA.match('sk-client-09999-f3a9c1d0e7b2')).to.equal(keys[9_999]);
    expect(routeB.match('sk-client-09999-f3a9c1d0e7b2')).to.equal(keys[9_999]);
  });

  it('matches no key when none is configured (whether the route is open is decided elsewhere)', function () {
    expect(createClientKeyMatcher().match('anything')).to.equal(undefined);
    expect(createClientKeyMatcher(indexClientKeys([]), indexClientKeys([])).match('anything')).to.equal(undefined);
  });

  it('compares keys as UTF-8 text, byte for byte', function () {
    const unicode = spec('sk-clé-ünïcode-0001');
    const index = createClientKeyMatcher(indexClientKeys([unicode]));
    expect(index.match('sk-clé-ünïcode-0001')).to.equal(unicode);
    // The same letters decomposed (e + combining accent) are other bytes: another key.
    expect(index.match('sk-cle\u0301-ünïcode-0001')).to.equal(undefined);
  });
});
