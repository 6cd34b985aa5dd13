// parseConfigText over YAML text: the original's example keeps its meaning, and every kind of bad
// config names the field path and the exact line:column an operator has to go to.
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { buildSnapshot } from '../../src/primary/build-snapshot.js';
import { acceptMode } from '../../src/shared/accept-mode.js';
import { ConfigError, parseConfigText, type ConfigIssue } from '../../src/shared/config/parse.js';

// The config.yml example of the original's README, verbatim (comments included).
const originalExample = readFileSync(new URL('../fixtures/original-readme-config.yml', import.meta.url), 'utf8');

/** Lines 1-3 of most cases below; the first provider item then starts on line 4, its fields at column 5. */
const head = ['cert_file: /certs/certificate.pem', 'private_key_file: /certs/private-key.pem', 'providers:'];

/** A valid provider entry for lines 4-6. */
const openaiAt4 = ['  - type: openai', '    host: o.example.com', '    endpoint: api.openai.com'];

function yaml(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

function issuesOf(text: string): ConfigIssue[] {
  try {
    parseConfigText(text, 'config.yml');
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  return expect.fail('the config was accepted');
}

/** The one issue a config produces, as `path: message @line:column` for readable failures. */
function onlyIssue(text: string): { path: string; message: string; at: string } {
  const issues = issuesOf(text);
  expect(issues, JSON.stringify(issues)).to.have.length(1);
  const [issue] = issues as [ConfigIssue];
  return { path: issue.path, message: issue.message, at: `${issue.line}:${issue.column}` };
}

describe('config: parseConfigText', function () {
  describe("the original's README example", function () {
    const parsed = parseConfigText(originalExample, 'config.yml');
    const { config } = parsed;
    const [openai, gemini, anthropic, backup] = config.providers;

    it('parses without warnings', function () {
      expect(parsed.warnings).to.deep.equal([]);
      expect(config.providers).to.have.length(4);
      expect(config.cert_file).to.equal('/certs/certificate.pem');
      expect(config.private_key_file).to.equal('/certs/private-key.pem');
      expect(config.auth_keys).to.deep.equal(['client-api-key-1', 'client-api-key-2']);
      expect(config.health_check_interval).to.equal(60);
    });

    it('fills in the defaults of the additions: listen 0.0.0.0:443, workers auto, admin, log, timeouts, limits', function () {
      expect(config.listen).to.equal('0.0.0.0:443');
      expect(config.workers).to.equal('auto');
      expect(config.admin).to.deep.equal({ listen: '127.0.0.1:9090' });
      expect(config.log).to.deep.equal({ level: 'info', format: 'auto' });
      expect(config.timeouts).to.deep.equal({ connect: 10, first_byte: 600, idle: 300, request_header: 30, keep_alive: 60, shutdown: 30 });
      expect(config.limits).to.deep.equal({ max_body_bytes: 32 * 1024 * 1024, max_header_bytes: 32 * 1024, max_buffered_bytes: 256 * 1024 * 1024 });
    });

    it('keeps each provider field as written', function () {
      expect(openai).to.include({ type: 'openai', host: 'openai.example.com', endpoint: 'api.openai.com', port: 443, tls: true, weight: 1, http2: false });
      expect(openai?.api_key).to.equal('sk-your-openai-api-key');
      expect(gemini).to.include({ type: 'gemini', endpoint: 'generativelanguage.googleapis.com', weight: 1.5, api_key: 'your-gemini-api-key' });
      expect(anthropic).to.include({ type: 'anthropic', endpoint: 'api.anthropic.com', weight: 1.2, api_key: 'sk-ant-your-anthropic-api-key' });
    });

    it('health_check: method, path, body, headers as written; timeout and thresholds defaulted', function () {
      expect(openai?.health_check).to.deep.equal({
        method: 'GET',
        path: '/v1/models',
        body: '{}',
        headers: ['Content-Type: application/json'],
        timeout: 10,
        healthy_threshold: 1,
        unhealthy_threshold: 1,
      });
      expect(gemini?.health_check?.headers).to.equal(undefined);
      expect(anthropic?.health_check).to.include({ method: 'POST', path: '/v1/messages' });
      expect(JSON.parse(anthropic?.health_check?.body ?? '')).to.deep.equal({
        model: 'claude-3-haiku-20240307',
        max_tokens: 1,
        messages: [{ role: 'user', content: 'ping' }],
      });
      expect(anthropic?.health_check?.headers).to.deep.equal(['Content-Type: application/json', 'anthropic-version: 2023-06-01']);
    });

    it('the api_keys provider: no port, tls default true, weighted keys, its own auth_keys', function () {
      expect(backup).to.include({ type: 'openai', host: 'openai-backup.example.com', endpoint: 'api.openai.com', tls: true });
      expect(backup?.port).to.equal(undefined);
      expect(backup?.weight).to.equal(undefined);
      expect(backup?.api_key).to.equal(undefined);
      expect(backup?.api_keys).to.deep.equal([
        { key: 'sk-key-1', weight: 1 },
        { key: 'sk-key-2', weight: 2 },
      ]);
      expect(backup?.auth_keys).to.deep.equal(['provider-specific-auth-key']);
    });

    it('compiles to upstream port 443 over TLS where port is omitted, one instance per key, weights as the original', function () {
      const snapshot = buildSnapshot({ file: 'config.yml', config, warnings: [], certPem: '', keyPem: '', caPems: new Map() }, 1, '', 1);
      expect(snapshot.listen).to.deep.equal({ host: '0.0.0.0', port: 443, reusePort: acceptMode() === 'workers' });
      const byHost = new Map(snapshot.routes.map((route) => [route.hostname, route]));
      expect([...byHost.keys()]).to.have.members(['openai.example.com', 'gemini.example.com', 'anthropic.example.com', 'openai-backup.example.com']);
      const backupRoute = byHost.get('openai-backup.example.com');
      expect(backupRoute?.instances.map((i) => ({ port: i.port, tls: i.tls, weight: i.weight, key: i.upstreamKey }))).to.deep.equal([
        { port: 443, tls: true, weight: 1, key: 'sk-key-1' },
        { port: 443, tls: true, weight: 2, key: 'sk-key-2' },
      ]);
      expect(backupRoute?.clientKeys.map((k) => k.key)).to.deep.equal(['provider-specific-auth-key']);
      expect(byHost.get('gemini.example.com')?.instances.map((i) => i.weight)).to.deep.equal([1.5]);
    });

    it('is frozen: validated once, then read-only', function () {
      expect(Object.isFrozen(config)).to.equal(true);
      expect(Object.isFrozen(openai?.health_check)).to.equal(true);
      expect(Object.isFrozen(backup?.api_keys?.[0])).to.equal(true);
    });
  });

  describe('forms the original accepts', function () {
    it('api_key as a list: one instance per key, each with the provider weight', function () {
      const { config } = parseConfigText(
        yaml(...head, '  - type: gemini', '    host: g.example.com', '    endpoint: generativelanguage.googleapis.com', '    weight: 3', '    api_key: [g-key-1, g-key-2]'),
        'config.yml',
      );
      expect(config.providers[0]?.api_key).to.deep.equal(['g-key-1', 'g-key-2']);
      const snapshot = buildSnapshot({ file: 'config.yml', config, warnings: [], certPem: '', keyPem: '', caPems: new Map() }, 1, '', 1);
      expect(snapshot.routes[0]?.instances.map((i) => [i.upstreamKey, i.weight])).to.deep.equal([
        ['g-key-1', 3],
        ['g-key-2', 3],
      ]);
    });

    it('openai needs no upstream key (clients bring their own)', function () {
      const { config } = parseConfigText(yaml(...head, '  - type: openai', '    host: o.example.com', '    endpoint: api.openai.com'), 'config.yml');
      expect(config.providers[0]?.api_key).to.equal(undefined);
    });

    it('auth_keys entries may be objects with a name, mixed with plain strings', function () {
      const { config } = parseConfigText(
        yaml('auth_keys:', '  - plain-client-key', '  - key: named-client-key', '    name: alice', ...head, '  - type: openai', '    host: o.example.com', '    endpoint: api.openai.com'),
        'config.yml',
      );
      expect(config.auth_keys).to.deep.equal(['plain-client-key', { key: 'named-client-key', name: 'alice' }]);
    });

    it('listen in IPv6 brackets, admin off, an endpoint given as an IP address', function () {
      const { config } = parseConfigText(
        yaml('listen: "[::]:8443"', 'admin:', '  listen: false', ...head, '  - type: openai', '    host: o.example.com/openai', '    endpoint: 10.0.0.7', '    tls: false'),
        'config.yml',
      );
      expect(config.listen).to.equal('[::]:8443');
      expect(config.admin.listen).to.equal(false);
      expect(config.providers[0]).to.include({ host: 'o.example.com/openai', endpoint: '10.0.0.7', tls: false });
    });
  });

  describe('rejected, with the field path and line:column', function () {

    it('YAML syntax error: at the quote that is never closed, not where the parser found out (the end of the file)', function () {
      const issue = onlyIssue(yaml(...head, '  - type: openai', '    host: "o.example.com', '    endpoint: api.openai.com'));
      // A broken tree names no field: the position is the whole address.
      expect(issue).to.deep.equal({ path: '(yaml)', message: 'invalid YAML: this " is never closed', at: '5:11' });
    });

    it('YAML syntax error: a tab used for indentation', function () {
      const issue = onlyIssue(yaml(...head, '  - type: openai', '\thost: o.example.com'));
      expect(issue).to.deep.equal({ path: '(yaml)', message: 'invalid YAML: Tabs are not allowed as indentation', at: '5:1' });
    });

    it('YAML error: an alias to an anchor that does not exist (no stack trace)', function () {
      const issue = onlyIssue(yaml(...head, '  - type: openai', '    host: *nowhere', '    endpoint: api.openai.com'));
      expect(issue.path).to.equal('providers[0].host');
      expect(issue.message).to.include('Unresolved alias');
      expect(issue.at).to.equal('5:11');
    });

    it('YAML error: a billion-laughs document is refused, not expanded', function () {
      const laughs = [
        'a: &a [x, x, x, x, x, x, x, x, x]',
        'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
        'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
        'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
      ];
      const issue = onlyIssue(yaml(...laughs, ...head, ...openaiAt4));
      expect(issue.message).to.include('Excessive alias count');
      expect(issue.at).to.match(/^[1-4]:\d+$/);
    });

    it('duplicate key: the second occurrence, and where the first one is', function () {
      const issue = onlyIssue(yaml(...head, ...openaiAt4, '    host: other.example.com'));
      expect(issue).to.deep.equal({ path: 'providers[0].host', message: 'duplicate key, first set on line 5; YAML keys must be unique', at: '7:5' });
    });

    it('shared_store: a URL that is not redis:// or rediss://, a bad database path, an unknown fallback', function () {
      const at7 = (...lines: string[]) => yaml(...head, ...openaiAt4, 'shared_store:', ...lines);
      expect(onlyIssue(at7('  url: http://redis.internal:6379'))).to.deep.equal({
        path: 'shared_store.url',
        message: 'scheme must be redis:// or rediss:// (TLS), not http://',
        at: '8:8',
      });
      expect(onlyIssue(at7('  url: redis://redis.internal:6379/cache')).message).to.equal('path must be a database number (/0 to /99), not /cache');
      expect(onlyIssue(at7('  url: not a url')).message).to.include('is not a URL');
      const fallback = onlyIssue(at7('  url: redis://redis.internal', '  on_unavailable: open'));
      expect(fallback).to.include({ path: 'shared_store.on_unavailable', at: '9:19' });
      expect(fallback.message).to.include('local or reject');
    });

    it('limits.max_buffered_bytes below limits.max_body_bytes: an error naming the budget', function () {
      const issue = onlyIssue(yaml(...head, ...openaiAt4, 'limits:', '  max_body_bytes: 2000000', '  max_buffered_bytes: 1000000'));
      expect(issue.path).to.equal('limits.max_buffered_bytes');
      expect(issue.message).to.include('at least limits.max_body_bytes');
    });

    it('shared_store: a valid one with TLS and ACL credentials takes the defaults', function () {
      const { config } = parseConfigText(yaml(...head, ...openaiAt4, 'shared_store:', '  url: rediss://proxy:s3cret@redis.internal:6380/2'), 'config.yml');
      expect(config.shared_store).to.deep.equal({
        url: 'rediss://proxy:s3cret@redis.internal:6380/2',
        key_prefix: 'llm-proxy:',
        connect_timeout: 2,
        command_timeout: 0.5,
        slot_ttl: 10,
        on_unavailable: 'local',
      });
    });

    it('duplicate key at the top level', function () {
      const issue = onlyIssue(yaml(...head, ...openaiAt4, 'cert_file: /elsewhere.pem'));
      expect(issue).to.deep.equal({ path: 'cert_file', message: 'duplicate key, first set on line 1; YAML keys must be unique', at: '7:1' });
    });

    it('wrong type: a string for port', function () {
      const issue = onlyIssue(yaml(...head, ...openaiAt4, '    port: "443"'));
      expect(issue).to.deep.equal({ path: 'providers[0].port', message: 'must be a number (got string)', at: '7:11' });
    });

    it('wrong type: a string for tls', function () {
      const issue = onlyIssue(yaml(...head, ...openaiAt4, '    tls: "yes"'));
      expect(issue).to.deep.equal({ path: 'providers[0].tls', message: 'must be true or false', at: '7:10' });
    });

    it('port out of range', function () {
      const issue = onlyIssue(yaml(...head, ...openaiAt4, '    port: 70000'));
      expect(issue).to.deep.equal({ path: 'providers[0].port', message: 'must be a port number 1-65535', at: '7:11' });
    });

    for (const weight of ['0', '-1', '.inf', '-.inf', '.nan', 'heavy', '']) {
      it(`provider weight ${weight === '' ? '(empty: null)' : weight}`, function () {
        const issue = onlyIssue(yaml(...head, ...openaiAt4, `    weight: ${weight}`.trimEnd()));
        expect(issue.path).to.equal('providers[0].weight');
        expect(issue.message).to.equal('must be a finite number greater than 0');
        // The value's column; an empty value sits right after the colon.
        expect(issue.at).to.equal(weight === '' ? '7:12' : '7:13');
      });
    }

    it('api_keys entry weight .inf', function () {
      const issue = onlyIssue(yaml(...head, ...openaiAt4, '    api_keys:', '      - key: sk-entry-1', '        weight: .inf'));
      expect(issue).to.deep.equal({ path: 'providers[0].api_keys[0].weight', message: 'must be a finite number greater than 0', at: '9:17' });
    });

    it('missing providers[i].endpoint: "is required", at the provider entry', function () {
      const issue = onlyIssue(yaml(...head, ...openaiAt4, '  - type: openai', '    host: b.example.com'));
      expect(issue).to.deep.equal({ path: 'providers[1].endpoint', message: 'is required', at: '7:5' });
    });

    it('missing providers', function () {
      const issue = onlyIssue(yaml('cert_file: /c.pem', 'private_key_file: /k.pem'));
      expect(issue).to.deep.equal({ path: 'providers', message: 'is required', at: '1:1' });
    });

    it('type: foo', function () {
      const issue = onlyIssue(yaml(...head, '  - type: foo', '    host: o.example.com', '    endpoint: api.openai.com'));
      expect(issue).to.deep.equal({ path: 'providers[0].type', message: 'must be one of openai, anthropic, gemini', at: '4:11' });
    });

    it('gemini without a key', function () {
      const issue = onlyIssue(yaml(...head, '  - type: gemini', '    host: g.example.com', '    endpoint: generativelanguage.googleapis.com'));
      expect(issue).to.deep.equal({ path: 'providers[0].api_key', message: 'gemini needs an upstream key (api_key or api_keys)', at: '4:5' });
    });

    it('anthropic without a key (an empty list counts as none)', function () {
      const issue = onlyIssue(yaml(...head, '  - type: anthropic', '    host: a.example.com', '    endpoint: api.anthropic.com', '    api_key: []'));
      expect(issue).to.deep.equal({ path: 'providers[0].api_key', message: 'anthropic needs an upstream key (api_key or api_keys)', at: '7:14' });
    });

    for (const endpoint of ['https://api.openai.com', 'api.openai.com:443', 'api.openai.com/v1']) {
      it(`endpoint with a scheme, port or path: ${endpoint}`, function () {
        const issue = onlyIssue(yaml(...head, '  - type: openai', '    host: o.example.com', `    endpoint: ${endpoint}`));
        expect(issue.path).to.equal('providers[0].endpoint');
        expect(issue.message).to.equal(`"${endpoint}" must be a bare host name or IP address (no scheme, port or path; use port: for the port)`);
        expect(issue.at).to.equal('6:15');
      });
    }

    it('host that is not a host name', function () {
      const issue = onlyIssue(yaml(...head, '  - type: openai', '    host: "o example.com"', '    endpoint: api.openai.com'));
      expect(issue).to.deep.equal({ path: 'providers[0].host', message: '"o example.com" is not a host name with an optional /path prefix', at: '5:11' });
    });

    for (const [listen, message] of [
      ['443', 'must be "address:port"'],
      ['localhost', 'must be "address:port", e.g. 0.0.0.0:443 or [::]:443'],
      ['0.0.0.0:70000', 'port must be 0-65535 (and a [bracketed] address must be IPv6)'],
      ['"[nope]:443"', 'must be "address:port", e.g. 0.0.0.0:443 or [::]:443'],
    ] as const) {
      it(`bad listen: ${listen}`, function () {
        const issue = onlyIssue(yaml(`listen: ${listen}`, ...head, ...openaiAt4));
        expect(issue).to.deep.equal({ path: 'listen', message, at: '1:9' });
      });
    }

    it('bad admin.listen', function () {
      const issue = onlyIssue(yaml('admin:', '  listen: 9090', ...head, ...openaiAt4));
      expect(issue).to.deep.equal({ path: 'admin.listen', message: 'must be "address:port" or false', at: '2:11' });
    });

    for (const workers of ['0', '1.5', '2000', 'many']) {
      it(`workers: ${workers}`, function () {
        const issue = onlyIssue(yaml(`workers: ${workers}`, ...head, ...openaiAt4));
        expect(issue).to.deep.equal({ path: 'workers', message: 'must be "auto" or a whole number from 1 to 1024', at: '1:10' });
      });
    }

    it('mixed provider types on one host (host names compare case-insensitively)', function () {
      const issue = onlyIssue(
        yaml(...head, ...openaiAt4, '  - type: anthropic', '    host: O.Example.com', '    endpoint: api.anthropic.com', '    api_key: sk-ant-mixed'),
      );
      expect(issue).to.deep.equal({
        path: 'providers[1].type',
        message: 'route "o.example.com" is already openai (providers[0]); providers sharing a host must share a type',
        at: '7:11',
      });
    });

    it('health_check without a path, and a header that is not "Name: value"', function () {
      const issues = issuesOf(yaml(...head, ...openaiAt4, '    health_check:', '      method: GET', '      headers: ["no colon here"]'));
      expect(issues.map((i) => [i.path, i.message, `${i.line}:${i.column}`])).to.deep.equal([
        ['providers[0].health_check.path', 'is required', '8:7'],
        ['providers[0].health_check.headers[0]', 'must look like "Name: value"', '9:17'],
      ]);
    });

    it('the config is not a map', function () {
      expect(onlyIssue('- just\n- a list\n')).to.deep.equal({ path: '(top level)', message: 'the config must be a YAML map', at: '1:1' });
      expect(onlyIssue('')).to.deep.equal({ path: '(top level)', message: 'the config must be a YAML map', at: '1:1' });
    });

    it("the error message has DESIGN's form: path: message (file:line:column)", function () {
      try {
        parseConfigText(yaml(...head, ...openaiAt4, '    weight: 0'), 'config.yml');
        expect.fail('accepted');
      } catch (err) {
        expect(err).to.be.instanceOf(ConfigError);
        expect((err as ConfigError).code).to.equal('CONFIG_INVALID');
        expect((err as Error).message).to.equal('providers[0].weight: must be a finite number greater than 0 (config.yml:7:13)');
      }
    });
  });

  describe('several errors are all reported at once, in file order', function () {
    it('schema errors in different providers, cross-field rules over the providers that parsed, and top-level fields', function () {
      const issues = issuesOf(
        yaml(
          'workers: 0',
          ...head,
          '  - type: openai',
          '    host: o.example.com',
          '    endpoint: https://api.openai.com',
          '    weight: -2',
          '  - type: gemini',
          '    host: g.example.com',
          '    endpoint: generativelanguage.googleapis.com',
          '  - type: anthropic',
          '    host: o.example.com',
          '    endpoint: api.anthropic.com',
          '    port: "443"',
          '    api_key: sk-ant-several',
        ),
      );
      expect(issues.map((i) => `${i.path} @${i.line}:${i.column}`)).to.deep.equal([
        'workers @1:10',
        'providers[0].endpoint @7:15',
        'providers[0].weight @8:13',
        'providers[1].api_key @9:5',
        'providers[2].port @15:11',
      ]);
    });

    it('a provider mixing types with a valid one is still found when another field is wrong', function () {
      const issues = issuesOf(
        yaml('workers: 0', ...head, ...openaiAt4, '  - type: gemini', '    host: o.example.com', '    endpoint: generativelanguage.googleapis.com', '    api_key: g-key-mixed'),
      );
      expect(issues.map((i) => `${i.path} @${i.line}:${i.column}`)).to.deep.equal(['workers @1:10', 'providers[1].type @8:11']);
    });
  });

  describe('unknown fields: a warning with path and line:column, and the rest still parses', function () {
    it('at the top level, in a provider, in health_check and in an api_keys entry', function () {
      const parsed = parseConfigText(
        yaml(
          'lsiten: 0.0.0.0:8443',
          ...head,
          ...openaiAt4,
          '    wieght: 2',
          '    api_keys:',
          '      - key: sk-unknown-fields',
          '        wieght: 3',
          '    health_check:',
          '      path: /v1/models',
          '      interval: 5',
        ),
        'config.yml',
      );
      expect(parsed.warnings).to.deep.equal([
        'lsiten: unknown field, ignored; did you mean listen? (config.yml:1:1)',
        'providers[0].wieght: unknown field, ignored; did you mean weight? (config.yml:8:5)',
        'providers[0].api_keys[0].wieght: unknown field, ignored; did you mean weight? (config.yml:11:9)',
        'providers[0].health_check.interval: unknown field, ignored (config.yml:14:7)',
      ]);
      // Ignored means ignored: the defaults stand, and the field is not carried along.
      expect(parsed.config.listen).to.equal('0.0.0.0:443');
      expect(parsed.config.providers[0]?.weight).to.equal(undefined);
      expect(parsed.config.providers[0]?.api_keys).to.deep.equal([{ key: 'sk-unknown-fields' }]);
      expect(parsed.config).to.not.have.property('lsiten');
      expect(parsed.config.providers[0]?.health_check).to.not.have.property('interval');
    });

    it('locate() finds a field for errors found after parsing (certificate files)', function () {
      const parsed = parseConfigText(originalExample, 'config.yml');
      expect(parsed.locate(['private_key_file'])).to.deep.equal({ line: 3, column: 19 });
      expect(parsed.locate(['providers', 3, 'api_keys', 1, 'key'])).to.deep.equal({ line: 66, column: 14 });
    });
  });
});
