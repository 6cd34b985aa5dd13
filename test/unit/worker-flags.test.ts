// Workers get a small V8 semi-space unless the operator chose one (command line or NODE_OPTIONS).
import { expect } from 'chai';
import { workerExecArgv } from '../../src/primary/worker-flags.js';

describe('worker node flags', function () {
  it('adds an 8 MB semi-space and keeps the primary flags', function () {
    expect(workerExecArgv(['--enable-source-maps'], undefined)).to.deep.equal(['--enable-source-maps', '--max-semi-space-size=8']);
  });

  it('leaves the semi-space to the operator when the command line or NODE_OPTIONS sets it', function () {
    expect(workerExecArgv(['--max-semi-space-size=32'], undefined)).to.deep.equal(['--max-semi-space-size=32']);
    expect(workerExecArgv([], '--trace-warnings --max_semi_space_size=8')).to.deep.equal([]);
  });
});
