// The request bodies the bench sends: a small chat completion (S1-S4, S6, S7) and an image prompt of
// an exact size (S5), a JSON request whose bulk is one base64 data URL, as a vision request is.
import { randomBytes } from 'node:crypto';

export const smallBody = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello in one short sentence.' }] });

export function imagePromptBody(bytes: number): Buffer {
  const prefix = '{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"What is in this image?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,';
  const suffix = '"}}]}]}';
  const base64 = randomBytes(bytes).toString('base64').slice(0, bytes - prefix.length - suffix.length);
  return Buffer.from(prefix + base64 + suffix);
}
