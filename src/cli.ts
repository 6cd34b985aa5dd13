#!/usr/bin/env node
// Entry point for both roles: cluster workers run this same file and go straight to the worker.
import cluster from 'node:cluster';
import { createRequire } from 'node:module';

process.setSourceMapsEnabled(true);

if (cluster.isWorker) {
  process.title = 'llm-proxy: worker';
  const { runWorker } = await import('./worker/main.js');
  runWorker();
} else {
  const { runCli } = await import('./primary/cli-commands.js');
  const version = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
  await runCli(process.argv, version);
}
