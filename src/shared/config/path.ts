// How config errors name a field: `providers[0].health_check.path`, as the operator wrote it.
export type ConfigPath = readonly (string | number)[];

export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out === '' ? '(top level)' : out;
}
