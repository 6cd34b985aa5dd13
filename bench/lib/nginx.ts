// nginx as the reference proxy, configured the way one would to front a streaming API fairly: same
// certificate and worker count as llm-proxy, keep-alive pools on both sides, no response buffering,
// request bodies held in memory (llm-proxy buffers them in memory too), an access log like ours.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool, toolFailure } from './run-tool.js';

/** What both proxies under test are given: where to run, listen and forward, and with what. */
export interface ProxyUnderTestOptions {
  dir: string;
  port: number;
  upstreamPort: number;
  workers: number;
  certFile: string;
  keyFile: string;
}

export type NginxOptions = ProxyUnderTestOptions;

export interface NginxProcess {
  readonly pid: number;
  stop(): Promise<void>;
}

function config(o: NginxOptions): string {
  // As root, nginx would switch its workers to `nobody`, who cannot read the run directory.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${user}worker_processes ${o.workers};
daemon off;
pid ${join(o.dir, 'nginx.pid')};
error_log ${join(o.dir, 'nginx-error.log')} warn;
events { worker_connections 8192; }
http {
  access_log ${join(o.dir, 'nginx-access.log')} combined buffer=64k flush=1s;
  client_body_temp_path ${join(o.dir, 'nginx-body')};
  proxy_temp_path ${join(o.dir, 'nginx-proxy')};
  fastcgi_temp_path ${join(o.dir, 'nginx-fastcgi')};
  uwsgi_temp_path ${join(o.dir, 'nginx-uwsgi')};
  scgi_temp_path ${join(o.dir, 'nginx-scgi')};
  keepalive_timeout 120s;
  keepalive_requests 1000000;
  http2_max_concurrent_streams 256;
  client_max_body_size 32m;
  client_body_buffer_size 2m;
  upstream mock {
    server 127.0.0.1:${o.upstreamPort};
    keepalive 1024;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
  }
  server {
    listen 127.0.0.1:${o.port} ssl http2;
    ssl_certificate ${o.certFile};
    ssl_certificate_key ${o.keyFile};
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 300s;
    }
  }
}
`;
}

export async function startNginx(o: NginxOptions): Promise<NginxProcess> {
  const file = join(o.dir, 'nginx.conf');
  await writeFile(file, config(o));
  const check = await runTool('nginx', ['-t', '-q', '-c', file, '-p', o.dir], 10_000);
  if (check.code !== 0) throw toolFailure('nginx -t', check);
  const child: ChildProcess = spawn('nginx', ['-c', file, '-p', o.dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error('nginx did not start');
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid,
    async stop() {
      if (child.exitCode === null) child.kill('SIGQUIT');
      await exited;
      if (stderr.includes('[emerg]')) throw new Error(`nginx: ${stderr.trim()}`);
    },
  };
}
