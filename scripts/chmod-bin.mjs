// tsc does not keep the executable bit; npm link / npx need it on the bin entry.
import { chmodSync } from 'node:fs';
chmodSync(new URL('../dist/cli.js', import.meta.url), 0o755);
