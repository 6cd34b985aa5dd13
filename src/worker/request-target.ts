// Which request targets the proxy forwards. Only origin-form paths (an absolute URL or `*` must never
// choose where a request goes), without dot segments, raw or percent-encoded (`/openai/../x` or
// `/%2e%2e/`: an upstream or a device between may normalise them into a path the route's prefix did
// not admit), and only with the characters undici sends (it refuses anything outside U+0021-U+00FF,
// which a raw HTTP/2 :path can carry).
const dotSegment = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;
const unsendable = /[^\u0021-\u00ff]/;

export function isForwardableTarget(target: string): boolean {
  if (target.charCodeAt(0) !== 0x2f) return false;
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  return !dotSegment.test(path) && !unsendable.test(target);
}
