#!/usr/bin/env bash
# The mocha part of `npm test`. Most test files run in two parallel mocha workers: they spend much
# of their time waiting on clusters, timers and sockets, and one at a time the suite left half of
# the two cores idle (4m54s serial, about 3 min this way, on the 2-CPU VM). Two files run after
# them, one at a time:
# - demo.test.ts, whose `npm run demo` rebuilds dist/ while it runs, which a proxy starting from
#   dist/ in the other worker could read half-written;
# - zz-no-secrets.test.ts, which reads what every proxy printed in every worker (recorded under
#   LLM_PROXY_TEST_RECORD_DIR by test/helpers/proxy-process.ts), so it must come last.
set -uo pipefail
cd "$(dirname "$0")/.."
record="$(mktemp -d)"
trap 'rm -rf "$record"' EXIT
export LLM_PROXY_TEST_RECORD_DIR="$record"
serial=(test/integration/demo.test.ts test/integration/zz-no-secrets.test.ts)

status=0
npx mocha --parallel --jobs 2 "${serial[@]/#/--ignore=}" || status=$?
npx mocha --no-config --node-option import=tsx --node-option enable-source-maps --extension ts --timeout 20000 --slow 2000 "${serial[@]}" || status=$?
exit "$status"
