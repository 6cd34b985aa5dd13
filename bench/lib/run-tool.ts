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

/**
 * Runs one of the bench's own Node load clients (bench/*-client.ts) in a process of its own, so its
 * event loop and CPU stay apart from the bench's: argv[2] is `run` as JSON, and its one line of JSON
 * output is the answer.
 */
export async function runNodeClient<Report>(entry: string, run: unknown, timeoutMs: number): Promise<Report> {
  const name = entry.slice(entry.lastIndexOf('/') + 1);
  const output = await runTool(process.execPath, ['--import', 'tsx', entry, JSON.stringify(run)], timeoutMs);
  if (output.code !== 0) throw toolFailure(name, output);
  return JSON.parse(output.stdout) as Report;
}
