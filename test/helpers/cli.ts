// Runs the built CLI once, as an operator would from a shell, for commands that exit by themselves
// (check, cert, --help, --version).
import { execFile } from 'node:child_process';
import { cliPath, printedByProxies } from './proxy-process.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cliPath, ...args], { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      // Kept for the end-of-suite check that no key is ever printed, error paths included.
      printedByProxies.push(stdout, stderr);
      if (err && (err.killed || typeof err.code !== 'number')) {
        reject(new Error(`llm-proxy ${args.join(' ')} did not exit by itself (${err.message}):\n${stdout}${stderr}`));
        return;
      }
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}
