// Runs a load generator to completion and hands back what it printed.
import { spawn } from 'node:child_process';

export interface ToolOutput {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runTool(command: string, args: readonly string[], timeoutMs: number): Promise<ToolOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
  });
}

export function toolFailure(what: string, output: ToolOutput): Error {
  const tail = (output.stderr || output.stdout).trim().split('\n').slice(-5).join('\n');
  return new Error(`${what} exited with ${output.code}: ${tail}`);
}
