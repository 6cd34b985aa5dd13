// `llm-proxy cert --out DIR`: a local CA and a server certificate on disk, and what to do with them.
// `npm run demo` writes its certificates with the same function.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createLocalCertificates } from '../shared/local-ca.js';

export interface CertificateFiles {
  dir: string;
  caFile: string;
  caKeyFile: string;
  certFile: string;
  keyFile: string;
}

export interface WrittenCertificates {
  files: CertificateFiles;
  hosts: readonly string[];
  notAfter: Date;
}

/** Some of the files are there already and --force was not given; nothing was written. */
export class CertificateFilesExistError extends Error {
  constructor(readonly existing: string[]) {
    super(`${existing.join(', ')} ${existing.length === 1 ? 'exists' : 'exist'} already; pass --force to overwrite`);
  }
}

export function certificateFiles(dir: string): CertificateFiles {
  const abs = resolve(dir);
  return { dir: abs, caFile: join(abs, 'ca.pem'), caKeyFile: join(abs, 'ca-key.pem'), certFile: join(abs, 'cert.pem'), keyFile: join(abs, 'key.pem') };
}

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Without force: creates each file exclusively ('wx'), so a file that appears between the check and
 * the write is not clobbered either. With force: each file is written beside and renamed over the
 * old one, so a proxy that reads them at that moment sees the old file or the new one, never half.
 */
async function writeOne(file: string, text: string, mode: number, force: boolean): Promise<void> {
  if (!force) {
    await writeFile(file, text, { flag: 'wx', mode });
    return;
  }
  const temp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temp, text, { flag: 'wx', mode });
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

export async function writeLocalCertificates(dir: string, hosts: readonly string[], opts: { force: boolean }): Promise<WrittenCertificates> {
  const files = certificateFiles(dir);
  const targets = [files.caFile, files.caKeyFile, files.certFile, files.keyFile];
  if (!opts.force) {
    const existing = (await Promise.all(targets.map(async (file) => ((await exists(file)) ? file : undefined)))).filter((f) => f !== undefined);
    if (existing.length > 0) throw new CertificateFilesExistError(existing);
  }
  const made = createLocalCertificates(hosts);
  await mkdir(files.dir, { recursive: true });
  // Private keys are readable by their owner alone.
  await writeOne(files.caFile, made.caCert, 0o644, opts.force);
  await writeOne(files.caKeyFile, made.caKey, 0o600, opts.force);
  await writeOne(files.keyFile, made.key, 0o600, opts.force);
  await writeOne(files.certFile, made.cert, 0o644, opts.force);
  return { files, hosts, notAfter: made.notAfter };
}

/** What `llm-proxy cert` prints: what was made, that it is for trials, and how to use it. */
export function certificateSummary(written: WrittenCertificates): string {
  const { files, hosts, notAfter } = written;
  const host = hosts.find((name) => !name.startsWith('*.')) ?? 'localhost';
  const origin = `https://${host.includes(':') ? `[${host}]` : host}`;
  return [
    `Wrote a local CA and a server certificate for ${hosts.join(', ')} into ${files.dir}:`,
    `  ca.pem      the CA certificate: the file clients are told to trust`,
    `  ca-key.pem  the CA's private key: keep it private, whoever has it can mint certificates those clients trust`,
    `  cert.pem    the server certificate, signed by that CA, valid until ${notAfter.toISOString().slice(0, 10)}`,
    `  key.pem     the server certificate's private key`,
    '',
    'These are self-signed, for trials only: no client trusts them until it is given ca.pem.',
    "In production use a certificate from a CA your clients already trust (e.g. Let's Encrypt).",
    '',
    'In config.yml:',
    `  cert_file: ${JSON.stringify(files.certFile)}`,
    `  private_key_file: ${JSON.stringify(files.keyFile)}`,
    '',
    'Clients:',
    `  curl --cacert ${files.caFile} ${origin}/...`,
    `  NODE_EXTRA_CA_CERTS=${files.caFile} node app.js      # Node SDKs (openai, @anthropic-ai/sdk, @google/genai)`,
    `  SSL_CERT_FILE=${files.caFile} python app.py          # Python openai / httpx`,
    '',
  ].join('\n');
}
