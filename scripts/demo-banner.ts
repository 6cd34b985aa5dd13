// What the demo prints once the proxy is ready: commands that work as printed, from the repo root.
// test/integration/demo.test.ts runs some of them as they are printed, so keep them runnable.

export interface BannerFacts {
  port: number;
  adminPort: number;
  mockPort: number;
  /** ca.pem and config.yml as the reader should type them (relative to the current directory). */
  caFile: string;
  configFile: string;
  clientKey: string;
}

export function demoBanner(facts: BannerFacts): string {
  const { port, adminPort, mockPort, caFile, configFile, clientKey } = facts;
  const base = `https://localhost:${port}`;
  const admin = `http://127.0.0.1:${adminPort}`;
  const ca = `--cacert ${caFile}`;
  const auth = `-H 'Authorization: Bearer ${clientKey}'`;
  const json = "-H 'Content-Type: application/json'";
  const chat = `'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}]}'`;
  return [
    '',
    `llm-proxy demo on ${base} (admin ${admin}; mock providers on 127.0.0.1:${mockPort}; config in ${configFile}). Try, from the repo root:`,
    '',
    '# OpenAI chat completion, routed by Host (the upstream sees its own key, never yours)',
    `curl ${ca} ${base}/v1/chat/completions -H 'Host: openai.example.com' ${auth} ${json} -d ${chat}`,
    '',
    '# The key swap made visible: with x-mock-echo: 1 the mock answers with the request as it reached it',
    '# (its Authorization header holds the upstream key sk-demo-upstream-a, not the client key)',
    `curl ${ca} ${base}/openai/v1/chat/completions ${auth} ${json} -H 'x-mock-echo: 1' -d ${chat}`,
    '',
    '# The same chat, streamed (SSE), routed by path prefix',
    `curl -N ${ca} ${base}/openai/v1/chat/completions ${auth} ${json} -H 'x-mock-delay-ms: 200' -d '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'`,
    '',
    '# Anthropic messages',
    `curl ${ca} ${base}/v1/messages -H 'Host: anthropic.example.com' -H 'x-api-key: ${clientKey}' -H 'anthropic-version: 2023-06-01' ${json} -d '{"model":"claude-3-5-haiku-latest","max_tokens":100,"messages":[{"role":"user","content":"Hello!"}]}'`,
    '',
    '# Gemini, key in the query as Google SDKs allow',
    `curl ${ca} '${base}/gemini/v1beta/models/gemini-2.0-flash:generateContent?key=${clientKey}' ${json} -d '{"contents":[{"parts":[{"text":"Hello!"}]}]}'`,
    '',
    '# A wrong key is refused before any upstream is contacted (401, OpenAI error format)',
    `curl ${ca} ${base}/openai/v1/models -H 'Authorization: Bearer wrong-key'`,
    '',
    '# The admin listener (plain HTTP, loopback only): Prometheus metrics, and workers, routes and instance health (never a key)',
    `curl ${admin}/metrics`,
    `curl ${admin}/status`,
    '',
    `# SDKs: point the base URL at the proxy, use the client key, and trust ${caFile}.`,
    `# OpenAI Node SDK (npm i openai), as app.mjs; run: NODE_EXTRA_CA_CERTS=${caFile} node app.mjs`,
    "import OpenAI from 'openai';",
    `const openai = new OpenAI({ baseURL: '${base}/openai/v1', apiKey: '${clientKey}' });`,
    "const reply = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello!' }] });",
    'console.log(reply.choices[0].message.content);',
    '',
    `# Anthropic Node SDK (npm i @anthropic-ai/sdk), as app.mjs; run: NODE_EXTRA_CA_CERTS=${caFile} node app.mjs`,
    "import Anthropic from '@anthropic-ai/sdk';",
    `const anthropic = new Anthropic({ baseURL: '${base}/anthropic', apiKey: '${clientKey}' });`,
    "const reply = await anthropic.messages.create({ model: 'claude-3-5-haiku-latest', max_tokens: 100, messages: [{ role: 'user', content: 'Hello!' }] });",
    'console.log(reply.content[0].text);',
    '',
    `# Google Gen AI Node SDK (npm i @google/genai), as app.mjs; run: NODE_EXTRA_CA_CERTS=${caFile} node app.mjs`,
    "import { GoogleGenAI } from '@google/genai';",
    `const ai = new GoogleGenAI({ apiKey: '${clientKey}', httpOptions: { baseUrl: '${base}/gemini' } });`,
    "const reply = await ai.models.generateContent({ model: 'gemini-2.0-flash', contents: 'Hello!' });",
    'console.log(reply.text);',
    '',
    `# OpenAI Python SDK (pip install openai), as app.py; run: SSL_CERT_FILE=${caFile} python app.py`,
    'from openai import OpenAI',
    `client = OpenAI(base_url="${base}/openai/v1", api_key="${clientKey}")`,
    'reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}])',
    'print(reply.choices[0].message.content)',
    '',
    'Ctrl-C stops the proxy (it drains in-flight requests first) and the mock providers.',
    '',
  ].join('\n');
}
