// What an operator reads when config.yml is wrong (issue 16): a YAML slip is one error at its line
// and column with the line shown and a caret under it, never a cascade of field errors from the tree
// the parser guessed; an unknown field names the field it probably meant; api_key with api_keys is said.
import { expect } from 'chai';
import { ConfigError, parseConfigText } from '../../src/shared/config/parse.js';
import { editDistance, nearestName } from '../../src/shared/config/suggest.js';

function yaml(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

/** The full text a ConfigError prints (what `check` writes to stderr). */
function errorText(text: string): string {
  try {
    parseConfigText(text, 'config.yml');
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return expect.fail('the config was accepted');
}

function warningsOf(text: string): readonly string[] {
  return parseConfigText(text, 'config.yml').warnings;
}

const head = ['cert_file: /certs/c.pem', 'private_key_file: /certs/k.pem', 'providers:'];
/** One provider on lines 4-7, its fields at column 5. */
const provider = ['  - type: openai', '    host: o.example.com', '    endpoint: api.openai.com', '    weight: 1'];
/** The provider with line `index` (0-based within it) replaced. */
const providerWith = (index: number, line: string) => provider.map((l, i) => (i === index ? line : l));

describe('config errors: YAML that does not parse', function () {
  it('a key indented one space too far: the line itself, not the value above it that yaml blames', function () {
    expect(errorText(yaml(...head, ...providerWith(2, '     endpoint: api.openai.com')))).to.equal(
      [
        'invalid YAML: this line is indented more than line 5, so it reads as part of the value of host there; keys of one map must start in the same column (config.yml:6:6)',
        '  6 |      endpoint: api.openai.com',
        '    |      ^',
        '  (1 more YAML error after this one, most likely caused by it: fix this one and check again)',
      ].join('\n'),
    );
  });

  it('a key indented one space too little: one error, no providers[1] the file does not have', function () {
    const text = errorText(yaml(...head, ...providerWith(2, '   endpoint: api.openai.com')));
    expect(text).to.equal(
      [
        "invalid YAML: Sequence item without - indicator; check this line's indentation against the lines above it (config.yml:6:4)",
        '  6 |    endpoint: api.openai.com',
        '    |    ^',
        '  (2 more YAML errors after this one, most likely caused by it: fix this one and check again)',
      ].join('\n'),
    );
    expect(text).to.not.include('providers[');
  });

  it('a tab as indentation: the caret line keeps the tab, so it lines up in a terminal', function () {
    expect(errorText(yaml(...head, ...providerWith(1, '  \thost: o.example.com')))).to.equal(
      [
        'invalid YAML: Tabs are not allowed as indentation (config.yml:5:3)',
        '  5 |   \thost: o.example.com',
        '    |   ^',
        '  (4 more YAML errors after this one, most likely caused by it: fix this one and check again)',
      ].join('\n'),
    );
  });

  it('a missing colon', function () {
    expect(errorText(yaml(...head, ...providerWith(2, '    endpoint api.openai.com')))).to.equal(
      [
        'invalid YAML: no colon after the key on this line (write key: value), so YAML reads it together with the next line (config.yml:6:5)',
        '  6 |     endpoint api.openai.com',
        '    |     ^',
      ].join('\n'),
    );
  });

  it('a flow sequence left open: at its [, not at the end of the file', function () {
    expect(errorText(yaml(...head, ...provider, 'retries:', '  on: [429, 503', '  attempts: 2'))).to.equal(
      ['invalid YAML: this [ is never closed (no matching ]) (config.yml:9:7)', '  9 |   on: [429, 503', '    |       ^'].join('\n'),
    );
  });

  it('a flow sequence closed twice', function () {
    expect(errorText(yaml(...head, ...provider, 'retries:', '  on: [429, 503]]'))).to.equal(
      ['invalid YAML: Unexpected flow-seq-end token in YAML stream: "]" (config.yml:9:17)', '  9 |   on: [429, 503]]', '    |                 ^'].join('\n'),
    );
  });

  it('a second document', function () {
    expect(errorText(yaml(...head, ...provider, '---', 'listen: 0.0.0.0:443'))).to.equal(
      ['invalid YAML: a second document starts here (a --- line); a config is one YAML document (config.yml:8:1)', '  8 | ---', '    | ^'].join('\n'),
    );
  });

  it('duplicate keys leave a sound tree: every one is reported, with its field path', function () {
    expect(errorText(yaml(...head, ...provider, '    weight: 2', 'listen: 0.0.0.0:443', 'listen: 0.0.0.0:8443'))).to.equal(
      [
        'providers[0].weight: duplicate key, first set on line 7; YAML keys must be unique (config.yml:8:5)',
        '  8 |     weight: 2',
        '    |     ^',
        'listen: duplicate key, first set on line 9; YAML keys must be unique (config.yml:10:1)',
        '  10 | listen: 0.0.0.0:8443',
        '     | ^',
      ].join('\n'),
    );
  });

  it('the line shown never carries a key: key values and bare list items are masked, the caret still lines up', function () {
    const text = errorText(yaml(...head, ...provider, '    api_key: "sk-test-errors-secret-0001', '    auth_keys: [sk-test-errors-client-0002'));
    expect(text).to.equal(['invalid YAML: this " is never closed (config.yml:8:14)', '  8 |     api_key: "**-****-******-******-****', '    |              ^'].join('\n'));
    const list = errorText(yaml('auth_keys:', '  - sk-test-errors-client-0003', ' - sk-test-errors-client-0004', ...head, ...provider));
    expect(list).to.not.include('sk-test-errors');
    expect(list).to.include('  3 |  - **-****-******-******-****\n');
    // A misspelt field name is not known to hold no secret: its value is masked too.
    const misspelt = errorText(yaml(...head, ...provider, '    api_ky: "sk-test-errors-upstream-0011'));
    expect(misspelt).to.include('  8 |     ******: "**-****-******-********-****\n');
    const colon = errorText(yaml(...head, ...provider, '    api_key sk-test-errors-upstream-0010', '    tls: true'));
    expect(colon).to.include('  8 |     api_key **-****-******-********-****\n');
  });

  it('a very long line (a config written as one line of JSON) is cut around the column', function () {
    const json = `{"cert_file": "/c.pem", "private_key_file": "/k.pem", "listen": "0.0.0.0:443", "workers": 2, "admin": {"listen": false}, "providers": [1, 2}`;
    const lines = errorText(json).split('\n');
    expect(lines[1]?.length).to.be.lessThan(140);
    expect(lines[1]).to.match(/^ {2}1 \| …/);
    // The caret sits under the [ that is never closed.
    expect(lines[2]?.indexOf('^')).to.equal(lines[1]?.indexOf('['));
  });
});

describe('config errors: valid YAML indented into the wrong place', function () {
  it('a provider field at the top level: the warning names where it belongs, the error points at that line', function () {
    const text = yaml(...head, '  - type: openai', '    host: o.example.com', 'endpoint: api.openai.com');
    try {
      parseConfigText(text, 'config.yml');
      expect.fail('accepted');
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      expect((err as ConfigError).message).to.equal('providers[0].endpoint: is required; line 6 has endpoint at another indentation (config.yml:4:5)');
      expect((err as ConfigError).warnings).to.deep.equal([
        "endpoint: unknown field, ignored; endpoint is a field of providers[]: check this line's indentation (config.yml:6:1)",
      ]);
    }
  });

  it('a health_check field beside the provider fields, and a provider field inside health_check', function () {
    try {
      parseConfigText(yaml(...head, ...provider, '    health_check:', '      method: GET', '      tls: false', '    path: /v1/models', '    timeout: 5'), 'config.yml');
      expect.fail('accepted');
    } catch (err) {
      expect((err as ConfigError).message).to.equal('providers[0].health_check.path: is required; line 11 has path at another indentation (config.yml:9:7)');
      expect((err as ConfigError).warnings).to.deep.equal([
        "providers[0].health_check.tls: unknown field, ignored; tls is a field of providers[0]: check this line's indentation (config.yml:10:7)",
        "providers[0].path: unknown field, ignored; path is a field of providers[0].health_check: check this line's indentation (config.yml:11:5)",
        "providers[0].timeout: unknown field, ignored; timeout is a field of providers[0].health_check: check this line's indentation (config.yml:12:5)",
      ]);
    }
  });

  it('a stray "-" starting a second provider: one error at its line, not one per missing field', function () {
    expect(errorText(yaml(...head, '  - type: openai', '    host: o.example.com', '  - endpoint: api.openai.com'))).to.equal(
      ['providers[0].endpoint: is required (config.yml:4:5)', 'providers[1]: type and host are required (config.yml:6:5)'].join('\n'),
    );
  });
});

describe('config errors: unknown fields suggest the nearest known name at their level', function () {
  it('at every level of the config', function () {
    expect(
      warningsOf(
        yaml(
          'health_check_intervall: 5',
          'auth_keys:',
          '  - key: sk-test-errors-client-0005',
          '    nmae: ops',
          '    rate_limit: { concurent: 3, requests_per_minute: 60 }',
          ...head,
          ...provider,
          '    api_kye: sk-test-errors-upstream-0006',
          '    api_keys:',
          '      - key: sk-test-errors-upstream-0007',
          '        wieght: 2',
          '    health_check: { path: /v1/models, tiemout: 3 }',
          'limits: { max_body_byte: 5 }',
          'timeouts: { idel: 3 }',
          'shared_store: { url: "redis://r.internal:6379", keyprefix: "p:" }',
          'admin: { lisen: false }',
          'log: { levle: info }',
          'retries: { attempt: 1 }',
          'circuit_breaker: { cooldwon: 5 }',
        ),
      ),
    ).to.deep.equal([
      'health_check_intervall: unknown field, ignored; did you mean health_check_interval? (config.yml:1:1)',
      'auth_keys[0].nmae: unknown field, ignored; did you mean name? (config.yml:4:5)',
      'auth_keys[0].rate_limit.concurent: unknown field, ignored; did you mean concurrent? (config.yml:5:19)',
      'providers[0].api_kye: unknown field, ignored; did you mean api_key? (config.yml:13:5)',
      'providers[0].api_keys[0].wieght: unknown field, ignored; did you mean weight? (config.yml:16:9)',
      'providers[0].health_check.tiemout: unknown field, ignored; did you mean timeout? (config.yml:17:39)',
      'limits.max_body_byte: unknown field, ignored; did you mean max_body_bytes? (config.yml:18:11)',
      'timeouts.idel: unknown field, ignored; did you mean idle? (config.yml:19:13)',
      'shared_store.keyprefix: unknown field, ignored; did you mean key_prefix? (config.yml:20:49)',
      'admin.lisen: unknown field, ignored; did you mean listen? (config.yml:21:10)',
      'log.levle: unknown field, ignored; did you mean level? (config.yml:22:8)',
      'retries.attempt: unknown field, ignored; did you mean attempts? (config.yml:23:12)',
      'circuit_breaker.cooldwon: unknown field, ignored; did you mean cooldown? (config.yml:24:20)',
    ]);
  });

  it('no suggestion when nothing is close; one edit at most for short names', function () {
    expect(warningsOf(yaml(...head, ...provider, '    colour: blue', '    prt: 443', '    xyz: 1'))).to.deep.equal([
      'providers[0].colour: unknown field, ignored (config.yml:8:5)',
      'providers[0].prt: unknown field, ignored; did you mean port? (config.yml:9:5)',
      'providers[0].xyz: unknown field, ignored (config.yml:10:5)',
    ]);
    expect(nearestName('helth_chek', ['health_check'])).to.equal('health_check');
    expect(nearestName('hlth_chk', ['health_check'])).to.equal(undefined);
    expect(nearestName('tsl', ['tls'])).to.equal('tls');
    expect(nearestName('API_KEY', ['api_key'])).to.equal('api_key');
  });

  it('edit distance counts a swapped pair of letters as one edit', function () {
    expect(editDistance('lsiten', 'listen')).to.equal(1);
    expect(editDistance('wieght', 'weight')).to.equal(1);
    expect(editDistance('kitten', 'sitting')).to.equal(3);
    expect(editDistance('', 'abc')).to.equal(3);
  });
});

describe('config errors: YAML warnings', function () {
  it('an unknown tag is a warning at its field, the value then checked as the string it became', function () {
    try {
      parseConfigText(yaml(...head, ...provider, 'workers: !cores 4'), 'config.yml');
      expect.fail('accepted');
    } catch (err) {
      expect((err as ConfigError).message).to.equal('workers: must be "auto" or a whole number from 1 to 1024 (config.yml:8:17)');
      expect((err as ConfigError).warnings).to.deep.equal(['workers: YAML: Unresolved tag: !cores (config.yml:8:10)']);
    }
  });
});

describe('config errors: api_key and api_keys on one provider', function () {
  it('both are used, as the original does, with a warning naming both lines', function () {
    const parsed = parseConfigText(
      yaml(...head, ...provider, '    api_key: sk-test-errors-upstream-0008', '    api_keys:', '      - key: sk-test-errors-upstream-0009', '        weight: 2'),
      'config.yml',
    );
    expect(parsed.warnings).to.deep.equal([
      'providers[0]: api_key (line 8) and api_keys (line 9) both set; the keys of both are used (api_keys first, then api_key with the provider weight); use api_keys alone for several keys (config.yml:8:5)',
    ]);
    expect(parsed.config.providers[0]?.api_key).to.equal('sk-test-errors-upstream-0008');
    expect(parsed.config.providers[0]?.api_keys).to.deep.equal([{ key: 'sk-test-errors-upstream-0009', weight: 2 }]);
  });
});
