// `npm run demo`: a working proxy from a fresh clone with no real provider key. It makes a CA and a
// certificate, starts the mock providers, writes demo/config.yml, starts the built proxy and prints
// curl commands that work. Ctrl-C stops everything (the proxy drains first).
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { writeCertificates } from '../test/helpers/certs.js';
import { startMockProvider } from '../test/helpers/mock-provider.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const demoDir = join(root, 'demo');
const port = Number(process.env.DEMO_PORT ?? 8443);
const clientKey = 'demo-client-key';

const print = (line = '') => process.stdout.write(`${line}\n`);

await mkdir(demoDir, { recursive: true });
const certs = await writeCertificates(demoDir, { names: ['openai.example.com', 'anthropic.example.com', 'gemini.example.com'] });
const mock = await startMockProvider();
const upstream = { endpoint: '127.0.0.1', port: mock.port, tls: false };
// Active health checks as an operator would set them: each provider's model list, every 10 s.
const modelList = { health_check: { path: '/v1/models', timeout: 2 } };
const geminiModelList = { health_check: { path: '/v1beta/models', timeout: 2 } };
const config = {
  cert_file: certs.certFile,
  private_key_file: certs.keyFile,
  listen: `127.0.0.1:${port}`,
  workers: 2,
  log: { level: 'info', format: 'pretty' },
  auth_keys: [clientKey],
  health_check_interval: 10,
  providers: [
    // Host routing, as in the original's README.
    { type: 'openai', host: 'openai.example.com', ...upstream, api_keys: [{ key: 'sk-demo-upstream-a', weight: 1 }, { key: 'sk-demo-upstream-b', weight: 3 }], ...modelList },
    { type: 'anthropic', host: 'anthropic.example.com', ...upstream, api_key: 'sk-ant-demo-upstream', ...modelList },
    { type: 'gemini', host: 'gemini.example.com', ...upstream, api_key: 'gemini-demo-upstream', ...geminiModelList },
    // Path-prefix routing on one host name, handy for SDK base URLs.
    { type: 'openai', host: 'localhost/openai', ...upstream, api_key: 'sk-demo-upstream-a' },
    { type: 'anthropic', host: 'localhost/anthropic', ...upstream, api_key: 'sk-ant-demo-upstream' },
    { type: 'gemini', host: 'localhost/gemini', ...upstream, api_key: 'gemini-demo-upstream' },
  ],
};
const configFile = join(demoDir, 'config.yml');
await writeFile(configFile, `# yaml-language-server: $schema=../schema/config.schema.json\n${stringify(config)}`);

const proxy = spawn(process.execPath, [join(root, 'dist/cli.js'), 'start', '-c', configFile, '--enable-health-check'], { stdio: ['ignore', 'pipe', 'inherit'] });
let announced = false;
proxy.stdout.on('data', (chunk: Buffer) => {
  process.stdout.write(chunk);
  if (!announced && chunk.toString().includes('ready')) {
    announced = true;
    announce();
  }
});
proxy.on('exit', async (code) => {
  await mock.close();
  process.exit(code ?? 0);
});
// Ctrl-C reaches the proxy too (same process group); it drains and exits, and so do we.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => proxy.kill('SIGTERM'));

function announce(): void {
  const base = `https://localhost:${port}`;
  const ca = `--cacert ${join('demo', 'ca.pem')}`;
  print();
  print(`llm-proxy demo on ${base} (mock providers on 127.0.0.1:${mock.port}; config in demo/config.yml). Try, from the repo root:`);
  print();
  print('# OpenAI chat completion, routed by Host (the upstream sees its own key, never yours)');
  print(`curl ${ca} ${base}/v1/chat/completions -H 'Host: openai.example.com' -H 'Authorization: Bearer ${clientKey}' -H 'Content-Type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}]}'`);
  print();
  print('# The same, streamed (SSE), routed by path prefix');
  print(`curl -N ${ca} ${base}/openai/v1/chat/completions -H 'Authorization: Bearer ${clientKey}' -H 'Content-Type: application/json' -H 'x-mock-delay-ms: 200' -d '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'`);
  print();
  print('# Anthropic messages');
  print(`curl ${ca} ${base}/v1/messages -H 'Host: anthropic.example.com' -H 'x-api-key: ${clientKey}' -H 'anthropic-version: 2023-06-01' -H 'Content-Type: application/json' -d '{"model":"claude-3-5-haiku-latest","max_tokens":100,"messages":[{"role":"user","content":"Hello!"}]}'`);
  print();
  print('# Gemini, key in the query as Google SDKs allow');
  print(`curl ${ca} '${base}/gemini/v1beta/models/gemini-2.0-flash:generateContent?key=${clientKey}' -H 'Content-Type: application/json' -d '{"contents":[{"parts":[{"text":"Hello!"}]}]}'`);
  print();
  print('# A wrong key is refused before any upstream is contacted (401, OpenAI error format)');
  print(`curl ${ca} ${base}/openai/v1/models -H 'Authorization: Bearer wrong-key'`);
  print();
  print('# The admin listener (plain HTTP, loopback): workers, routes, instance health; never a key');
  print('curl http://127.0.0.1:9090/status');
  print();
  print('Ctrl-C stops the proxy (it drains in-flight requests first) and the mock providers.');
}
