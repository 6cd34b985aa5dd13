// Which runtimes let each worker accept on its own socket: Node 22.12+ and 23.1+ on Linux (libuv 1.49's
// SO_REUSEPORT balancing); Node 20 ignores the option, and elsewhere the first socket would take all.
import { expect } from 'chai';
import { acceptMode, reusePortSupported } from '../../src/shared/accept-mode.js';

describe('accept mode', function () {
  it('reusePort only where Node and the kernel balance it', function () {
    const cases: [string, string, boolean][] = [
      ['20.20.2', 'linux', false],
      ['22.11.0', 'linux', false],
      ['22.12.0', 'linux', true],
      ['23.0.0', 'linux', false],
      ['23.1.0', 'linux', true],
      ['24.22.3', 'linux', true],
      ['24.22.3', 'darwin', false],
    ];
    for (const [version, platform, expected] of cases) expect(reusePortSupported(version, platform as NodeJS.Platform), `${version} ${platform}`).to.equal(expected);
  });

  it('LLM_PROXY_ACCEPT=primary keeps the primary accepting on a runtime that could do otherwise', function () {
    expect(acceptMode({}, true)).to.equal('workers');
    expect(acceptMode({ LLM_PROXY_ACCEPT: 'primary' }, true)).to.equal('primary');
    expect(acceptMode({}, false)).to.equal('primary');
  });
});
