// Runs the demo's proxy and stops it when the demo goes away, however it goes: the demo holds this
// process's stdin, and the kernel closes that pipe even when the demo is SIGKILLed, which no signal
// handler in the demo could catch. Usage (by scripts/demo.ts only): node demo-guard.mjs CMD ARGS...
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

const [command, ...args] = process.argv.slice(2);
if (command === undefined) {
  process.stderr.write('usage: node demo-guard.mjs COMMAND [ARGS...]\n');
  process.exit(2);
}
const proxy = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  // One SIGTERM: the primary drains and stops its workers; a second signal would make it exit at once.
  proxy.kill('SIGTERM');
  setTimeout(() => proxy.kill('SIGKILL'), 10_000).unref();
}

process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, stop);
proxy.on('exit', (code, signal) => process.exit(code ?? 128 + (signal ? constants.signals[signal] : 0)));
