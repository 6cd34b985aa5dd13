// Gemini also takes its key in the query (`?key=`). The client's value is read for auth and
// replaced by the upstream key; the rest of the target stays byte for byte.

/** First non-empty value of `name` in the target's query, percent-decoded; undefined when absent. */
export function readQueryParam(target: string, name: string): string | undefined {
  const q = target.indexOf('?');
  if (q === -1) return undefined;
  const prefix = `${name}=`;
  for (const part of target.slice(q + 1).split('&')) {
    if (part.startsWith(prefix) && part.length > prefix.length) {
      const value = part.slice(prefix.length);
      try {
        return decodeURIComponent(value);
      } catch {
        return value;
      }
    }
  }
  return undefined;
}

/**
 * Replaces the first `name=` parameter's value with `encodedValue` and drops any further ones, so no
 * client credential rides along; a target without the parameter is returned unchanged.
 */
export function replaceQueryParam(target: string, name: string, encodedValue: string): string {
  const q = target.indexOf('?');
  if (q === -1) return target;
  const prefix = `${name}=`;
  const query = target.slice(q + 1);
  if (!query.startsWith(prefix) && !query.includes(`&${prefix}`)) return target;
  let replaced = false;
  const kept: string[] = [];
  for (const part of query.split('&')) {
    if (part.startsWith(prefix) || part === name) {
      if (!replaced) kept.push(`${prefix}${encodedValue}`);
      replaced = true;
    } else kept.push(part);
  }
  return `${target.slice(0, q + 1)}${kept.join('&')}`;
}
