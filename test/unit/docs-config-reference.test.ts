// The configuration reference (docs/configuration.md) cannot drift from the schema: every field the published JSON
// Schema has (nested ones included) must have its own row in the README's Fields table, and every
// row must name a field that exists.
import { readFileSync } from 'node:fs';
import { expect } from 'chai';

type SchemaNode = { type?: string | string[]; properties?: Record<string, SchemaNode>; items?: SchemaNode; anyOf?: SchemaNode[]; oneOf?: SchemaNode[] };

const schema = JSON.parse(readFileSync(new URL('../../schema/config.schema.json', import.meta.url), 'utf8')) as SchemaNode;
const readme = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');

/** Every field path: `timeouts.idle`, `providers[].health_check.path`, `auth_keys[].rate_limit.concurrent`. */
function fieldPaths(node: SchemaNode, prefix: string, into: Set<string>): void {
  for (const variant of [...(node.anyOf ?? []), ...(node.oneOf ?? [])]) fieldPaths(variant, prefix, into);
  if (node.items !== undefined) {
    if (node.items.properties !== undefined || node.items.anyOf !== undefined) into.add(`${prefix}[]`);
    fieldPaths(node.items, `${prefix}[]`, into);
  }
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    const path = prefix === '' ? name : `${prefix}.${name}`;
    into.add(path);
    fieldPaths(child, path, into);
  }
}

/** The field names in the first column of the README's Fields table. */
function documentedFields(): Set<string> {
  const section = readme.slice(readme.indexOf('### Fields'));
  const table = section.slice(0, section.indexOf('\n\n', section.indexOf('| --- |')));
  const names = new Set<string>();
  for (const row of table.split('\n').slice(2)) {
    const firstCell = row.split('|')[1] ?? '';
    for (const match of firstCell.matchAll(/`([^`]+)`/g)) names.add(match[1] as string);
  }
  return names;
}

describe('configuration reference (docs/configuration.md)', function () {
  const inSchema = new Set<string>();
  fieldPaths(schema, '', inSchema);
  const documented = documentedFields();

  it('lists every field of the schema', function () {
    expect(inSchema.size).to.be.greaterThan(40);
    // A section (`timeouts`, `log`) is covered by rows for its fields; everything else has a row.
    const covered = (path: string) => documented.has(path) || [...documented].some((name) => name.startsWith(`${path}.`) || name.startsWith(`${path}[]`));
    expect([...inSchema].filter((path) => !covered(path))).to.deep.equal([]);
    const leaves = [...inSchema].filter((path) => ![...inSchema].some((other) => other.startsWith(`${path}.`)));
    expect(leaves.filter((path) => !documented.has(path) && !documented.has(path.replace(/\[\]$/, '')))).to.deep.equal([]);
  });

  it('lists no field the schema does not have', function () {
    expect([...documented].filter((path) => !inSchema.has(path))).to.deep.equal([]);
  });
});
