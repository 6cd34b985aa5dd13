import { parseConfigText, ConfigError } from '../src/shared/config/parse.js';
const base = (p: string) => `cert_file: c.pem
private_key_file: k.pem
providers:
${p}`;
const cases: Record<string, string> = {
  yamlSyntax: 'cert_file: "a\nproviders: [\n',
  yamlSyntax2: 'cert_file: a\n  bad: : x\nproviders: []\n',
  portString: base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n    port: "443"\n    api_key: sk-1\n`),
  weight0: base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n    weight: 0\n`),
  weightNeg: base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n    weight: -1\n`),
  weightInf: base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n    weight: .inf\n`),
  weightNan: base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n    weight: .nan\n`),
  weightStr: base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n    weight: heavy\n`),
  keyWeightInf: base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n    api_keys:\n      - key: k\n        weight: .inf\n`),
  noEndpoint: base(`  - type: openai\n    host: a.example.com\n`),
  typeFoo: base(`  - type: foo\n    host: a.example.com\n    endpoint: api.openai.com\n`),
  noType: base(`  - host: a.example.com\n    endpoint: api.openai.com\n`),
  geminiNoKey: base(`  - type: gemini\n    host: a.example.com\n    endpoint: generativelanguage.googleapis.com\n`),
  anthropicNoKey: base(`  - type: anthropic\n    host: a.example.com\n    endpoint: api.anthropic.com\n`),
  anthropicEmptyList: base(`  - type: anthropic\n    host: a.example.com\n    endpoint: api.anthropic.com\n    api_key: []\n`),
  scheme: base(`  - type: openai\n    host: a.example.com\n    endpoint: https://api.openai.com\n`),
  withPort: base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com:443\n`),
  badListen: 'listen: 443\n' + base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n`),
  badListen2: 'listen: "localhost"\n' + base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n`),
  badListen3: 'listen: "0.0.0.0:70000"\n' + base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n`),
  workers0: 'workers: 0\n' + base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n`),
  mixed: base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n  - type: anthropic\n    host: A.example.com\n    endpoint: api.anthropic.com\n    api_key: x\n`),
  dupKey: base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n    host: b.example.com\n`),
  dupTop: 'cert_file: a\n' + base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n`),
  unknown: 'lsiten: x\n' + base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n    wieght: 2\n    health_check:\n      path: /v1/models\n      interval: 5\n`),
  unknownPlusErr: 'lsiten: x\n' + base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n    weight: 0\n`),
  several: 'workers: 0\n' + base(`  - type: openai\n    host: a.example.com\n    endpoint: https://api.openai.com\n    weight: -2\n  - type: gemini\n    host: g.example.com\n    endpoint: x.com\n`),
  noProviders: 'cert_file: a\nprivate_key_file: b\n',
  nullProviders: 'cert_file: a\nprivate_key_file: b\nproviders:\n',
  empty: '',
  list: '- a\n',
  nullWeight: base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n    weight:\n`),
  portZero: base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n    port: 0\n`),
  tlsStr: base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n    tls: "yes"\n`),
  hcHeaders: base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n    health_check:\n      path: v1\n      headers: ["bad header"]\n`),
  authKeysNum: 'auth_keys: [1]\n' + base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n`),
  workersStr: 'workers: many\n' + base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n`),
  workersFloat: 'workers: 1.5\n' + base(`  - type: openai\n    host: a.example.com\n    endpoint: api.openai.com\n`),
};
for (const [name, text] of Object.entries(cases)) {
  try {
    const r = parseConfigText(text, 'config.yml');
    process.stdout.write(`${name}: OK warnings=${JSON.stringify(r.warnings)}\n`);
  } catch (err) {
    if (err instanceof ConfigError) process.stdout.write(`${name}: ERR\n  ${err.message.replace(/\n/g, '\n  ')}\n`);
    else process.stdout.write(`${name}: THROW ${String(err)}\n`);
  }
}
