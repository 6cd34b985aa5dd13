// The published JSON Schema (schema/config.schema.json) is generated from the zod definition; this
// fails when someone changes one without regenerating the other (`npm run schema`).
import { readFile } from 'node:fs/promises';
import { expect } from 'chai';
import { renderSchema, schemaFile } from '../../scripts/write-schema.js';

interface JsonSchema {
  $schema?: string;
  $id?: string;
  title?: string;
  type?: string;
  required?: string[];
  additionalProperties?: boolean;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  default?: unknown;
  exclusiveMinimum?: number;
  minimum?: number;
  maximum?: number;
  format?: string;
  pattern?: string;
}

function property(schema: JsonSchema, ...path: string[]): JsonSchema {
  let node = schema;
  for (const name of path) {
    const next = name === '[]' ? node.items : node.properties?.[name];
    expect(next, `schema has no ${path.join('.')}`).to.not.equal(undefined);
    node = next as JsonSchema;
  }
  return node;
}

describe('config JSON Schema (schema/config.schema.json)', function () {
  let committed: string;
  let schema: JsonSchema;

  before(async function () {
    committed = await readFile(schemaFile, 'utf8');
    schema = JSON.parse(committed) as JsonSchema;
  });

  it('the committed file is exactly what the zod schema generates (run `npm run schema` if not)', function () {
    expect(committed).to.equal(renderSchema());
  });

  it('is a 2020-12 schema with an $id and a title', function () {
    expect(schema.$schema).to.equal('https://json-schema.org/draft/2020-12/schema');
    expect(schema.$id).to.match(/^https:\/\/.+config\.schema\.json$/);
    expect(schema.title).to.be.a('string').and.not.equal('');
    expect(committed.endsWith('}\n')).to.equal(true);
  });

  it('requires providers and the certificate files, and rejects unknown top-level fields', function () {
    expect(schema.type).to.equal('object');
    expect(schema.required).to.have.members(['cert_file', 'private_key_file', 'providers']);
    expect(schema.additionalProperties).to.equal(false);
  });

  it("describes a provider the way the original's config.yml writes it", function () {
    const provider = property(schema, 'providers', '[]');
    expect(provider.additionalProperties).to.equal(false);
    expect(provider.required).to.have.members(['type', 'host', 'endpoint']);
    expect(property(provider, 'type').enum).to.have.members(['openai', 'anthropic', 'gemini']);
    for (const field of ['port', 'tls', 'weight', 'api_key', 'api_keys', 'auth_keys', 'health_check']) property(provider, field);
    // api_key: a string or a list of strings.
    expect(property(provider, 'api_key').anyOf?.map((option) => option.type)).to.have.members(['string', 'array']);
    expect(property(provider, 'tls').default).to.equal(true);
    expect(property(provider, 'port').maximum).to.equal(65535);
  });

  it('weights are exclusive-minimum 0, for the provider and for each api_keys entry', function () {
    expect(property(schema, 'providers', '[]', 'weight').exclusiveMinimum).to.equal(0);
    expect(property(schema, 'providers', '[]', 'api_keys', '[]', 'weight').exclusiveMinimum).to.equal(0);
  });

  it('input-side schema: defaulted fields are optional and carry their default for editors', function () {
    expect(schema.required).to.not.include('listen');
    expect(property(schema, 'listen').default).to.equal('0.0.0.0:443');
    expect(property(schema, 'workers').default).to.equal('auto');
    expect(property(schema, 'health_check_interval').default).to.equal(60);
    expect(property(schema, 'providers', '[]', 'health_check').required).to.deep.equal(['path']);
  });

  it('uses no format a strict validator would reject as unknown', function () {
    const formats: string[] = [];
    const walk = (value: unknown): void => {
      if (Array.isArray(value)) value.forEach(walk);
      else if (value && typeof value === 'object') {
        for (const [key, child] of Object.entries(value)) {
          // Under `properties` the keys are field names (log.format is one); `default` holds data.
          if (key === 'properties' && child && typeof child === 'object') Object.values(child).forEach(walk);
          else if (key === 'format' && typeof child === 'string') formats.push(child);
          else if (key !== 'default') walk(child);
        }
      }
    };
    walk(schema);
    expect(formats.filter((format) => !['uri', 'email', 'hostname', 'ipv4', 'ipv6', 'date-time'].includes(format))).to.deep.equal([]);
  });
});
