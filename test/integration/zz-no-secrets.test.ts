// Issue 2, shown 9: runs last (by name order when serial; `npm test` runs it after the parallel
// files) and reads everything every proxy process printed during the suite: no client or upstream
// key may appear in it, in any form.
import { expect } from 'chai';
import { recordedRun } from '../helpers/proxy-process.js';

describe('secrets in proxy output (whole suite)', function () {
  it('no configured key appears in anything a proxy printed', function () {
    const { output, keys } = recordedRun();
    expect(keys.size, 'no keys were recorded: run the whole suite').to.be.greaterThan(5);
    expect(output.length, 'no proxy output was recorded').to.be.greaterThan(1000);
    const leaked = [...keys].filter((key) => output.includes(key) || output.includes(encodeURIComponent(key)));
    expect(leaked).to.deep.equal([]);
  });

  it('the access log was part of what was checked', function () {
    const { output } = recordedRun();
    expect(output).to.include('"msg":"request"');
    expect(output).to.include('"route":');
  });
});
