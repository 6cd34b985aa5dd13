// The model a request names, read from the top level of its JSON body without parsing the body (see
// json-members for how the walk skips values).
import { forEachMember, keyIs, topLevelObject } from './json-members.js';

const QUOTE = 0x22;

/**
 * A reader of one top-level key's string value from a JSON object body (undefined when absent or not
 * a string). The quoted key is encoded once, not on every request.
 */
export function createTopLevelStringReader(key: string): (body: Buffer) => string | undefined {
  const wanted = Buffer.from(JSON.stringify(key));
  return (body) => readTopLevelString(body, wanted);
}

/** The `model` of an OpenAI or Anthropic request body; null (no body) names none. */
const readModel = createTopLevelStringReader('model');
export const modelInBody = (body: Buffer | null): string | undefined => (body === null ? undefined : readModel(body));

function readTopLevelString(body: Buffer, wanted: Buffer): string | undefined {
  const open = topLevelObject(body);
  if (open === -1) return undefined;
  let found: string | undefined;
  forEachMember(body, open, (keyStart, keyEnd, valueStart, valueEnd) => {
    if (!keyIs(body, keyStart, keyEnd, wanted)) return false;
    if (body[valueStart] === QUOTE) {
      try {
        found = JSON.parse(body.toString('utf8', valueStart, valueEnd)) as string;
      } catch {
        // not a JSON string after all: names no model
      }
    }
    return true;
  });
  return found;
}
