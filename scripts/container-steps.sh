#!/usr/bin/env bash
# The Dockerfile's steps without a Docker engine (CI has none): the build context the .dockerignore
# lets through, copied clean; the build stage (scripts/build-release.sh, as the Dockerfile runs it);
# then the image's ENTRYPOINT and CMD, read from the Dockerfile, run from the release alone as an
# unprivileged user; its HEALTHCHECK; one request through it; SIGHUP; SIGTERM. Exits non-zero at
# the first step that fails, and says which.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/llm-proxy-container-XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
fail() { printf 'container-steps: FAILED: %s\n' "$*" >&2; exit 1; }

step "build context (what .dockerignore admits)"
context="$work/context"
mkdir -p "$context/scripts"
( cd "$root" && cp -R package.json package-lock.json tsconfig.json tsconfig.build.json src schema "$context"/ \
  && cp scripts/build-release.sh scripts/chmod-bin.mjs scripts/healthcheck.mjs "$context/scripts/" )
grep -q 'RUN sh scripts/build-release.sh /release' "$root/Dockerfile" || fail "the Dockerfile no longer builds with scripts/build-release.sh"

step "build stage: scripts/build-release.sh"
app="$work/app"
( cd "$context" && sh scripts/build-release.sh "$app" ) || fail "build stage"
for dev in typescript mocha tsx chai; do
  [ ! -e "$app/node_modules/$dev" ] || fail "dev dependency $dev is in the release"
done
[ -f "$app/dist/cli.js" ] && [ -f "$app/schema/config.schema.json" ] || fail "release is missing dist/cli.js or the schema"

step "runtime files: certificate, config, an upstream"
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
port="$(free_port)"; admin="$(free_port)"; upstream="$(free_port)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,DNS:container.test,IP:127.0.0.1" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null || fail "certificate"
cat > "$work/config.yml" <<YAML
cert_file: $work/cert.pem
private_key_file: $work/key.pem
listen: 127.0.0.1:$port
workers: 2
admin: { listen: "127.0.0.1:$admin" }
auth_keys: [container-steps-client-key]
providers:
  - { type: openai, host: container.test, endpoint: 127.0.0.1, port: $upstream, tls: false, api_key: container-steps-upstream-key }
YAML
node -e "require('http').createServer((q,s)=>{s.setHeader('content-type','application/json');s.end('{\"object\":\"list\",\"data\":[]}')}).listen($upstream,'127.0.0.1')" &
pids+=($!)

step "start: the image's ENTRYPOINT + CMD, as an unprivileged user"
# ENTRYPOINT and CMD as the Dockerfile writes them (exec form), with the image's paths mapped here.
read_exec_form() { node -e "
  const line = require('fs').readFileSync('$root/Dockerfile', 'utf8').split('\n').find((l) => l.startsWith('$1 '));
  if (!line) process.exit(1);
  console.log(JSON.parse(line.slice('$1 '.length)).join('\n'));"; }
mapfile -t entrypoint < <(read_exec_form ENTRYPOINT) || fail "no exec-form ENTRYPOINT"
mapfile -t cmd < <(read_exec_form CMD) || fail "no exec-form CMD"
[ "${entrypoint[0]}" = node ] || fail "ENTRYPOINT must start node itself (PID 1), not ${entrypoint[0]}"
command=()
for arg in "${entrypoint[@]}" "${cmd[@]}"; do
  arg="${arg//\/app\//$app/}"
  arg="${arg//\/config.yml/$work/config.yml}"
  command+=("$arg")
done
command[0]="$(command -v node)"
chmod -R a+rX "$work"
chmod a+r "$work/key.pem"
run_as=()
if [ "$(id -u)" = 0 ]; then run_as=(setpriv --reuid=65534 --regid=65534 --clear-groups --); fi
( cd "$app" && exec "${run_as[@]}" "${command[@]}" ) > "$work/proxy.log" 2>&1 &
proxy_pid=$!
pids+=("$proxy_pid")
healthcheck() { LLM_PROXY_ADMIN="127.0.0.1:$admin" node "$app/healthcheck.mjs"; }
grep -q 'HEALTHCHECK .*CMD \["node", "/app/healthcheck.mjs"\]' "$root/Dockerfile" || fail "the Dockerfile's HEALTHCHECK is not healthcheck.mjs"
for _ in $(seq 1 150); do
  grep -q '"msg":"ready"' "$work/proxy.log" && break
  kill -0 "$proxy_pid" 2>/dev/null || { cat "$work/proxy.log"; fail "the proxy exited at start"; }
  sleep 0.1
done
grep -q '"msg":"ready"' "$work/proxy.log" || { cat "$work/proxy.log"; fail "not ready within 15 s"; }
if [ "$(id -u)" = 0 ]; then
  owner="$(ps -o user= -p "$proxy_pid")"
  [ "$owner" = nobody ] || [ "$owner" = 65534 ] || fail "the proxy runs as $owner, not an unprivileged user"
fi

step "HEALTHCHECK"
healthcheck || fail "healthcheck.mjs did not see /healthz answer 200"

step "a request through the proxy"
status="$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$work/cert.pem" --resolve "container.test:$port:127.0.0.1" \
  -H 'Authorization: Bearer container-steps-client-key' "https://container.test:$port/v1/models")"
[ "$status" = 200 ] || { cat "$work/proxy.log"; fail "request answered $status"; }

step "SIGHUP reloads"
kill -HUP "$proxy_pid"
for _ in $(seq 1 100); do grep -q '"msg":"config applied"' "$work/proxy.log" && break; sleep 0.1; done
grep -q '"msg":"config applied"' "$work/proxy.log" || { cat "$work/proxy.log"; fail "no 'config applied' after SIGHUP"; }

step "SIGTERM drains and exits 0"
kill -TERM "$proxy_pid"
code=0
wait "$proxy_pid" || code=$?
[ "$code" = 0 ] || { cat "$work/proxy.log"; fail "exit code $code after SIGTERM"; }
grep -q '"msg":"stopped"' "$work/proxy.log" || fail "no 'stopped' line after SIGTERM"

printf '\ncontainer-steps: every step passed\n'
