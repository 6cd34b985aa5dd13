import { parseDocument, LineCounter } from 'yaml';
for (const text of ['cert_file: "a\nproviders: [\n', 'a: 1\nb:\n  - x: 1\n    x: 2\n', 'a: 1\na: 2\n', 'a: [1, 2\nb: 3\n', 'a:\n\tb: 1\n', 'a: b: c\n']) {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  for (const e of doc.errors) process.stdout.write(`${JSON.stringify(text)} ${e.code} ${JSON.stringify(e.pos)} ${JSON.stringify(lc.linePos(e.pos[0]))} ${e.message}\n`);
  process.stdout.write(JSON.stringify(doc.toJS()) + '\n');
}
