// Found by the config fuzzer: YAML lets a list or a map be a key, which yaml turns into a string with
// a runtime warning; the parser refuses it with a position instead.
import { expect } from 'chai';
import { ConfigError, parseConfigText } from '../../src/shared/config/parse.js';

describe('config: keys that are collections', function () {
  for (const [name, text, line] of [
    ['a flow sequence as a key', 'cert_file: a\n? [x, y]\n: 1\nproviders: []\n', 2],
    ['a map as a key inside a provider', 'cert_file: a\nproviders:\n  - type: openai\n    ? {a: 1}\n    : b\n', 4],
  ] as const) {
    it(`${name} is an error with its line`, function () {
      let error: unknown;
      try {
        parseConfigText(text, 'config.yml');
      } catch (err) {
        error = err;
      }
      expect(error).to.be.instanceOf(ConfigError);
      const [issue] = (error as ConfigError).issues;
      expect(issue?.message).to.include('a key must be a plain value');
      expect(issue?.line).to.equal(line);
    });
  }
});
