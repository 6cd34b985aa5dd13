#!/bin/sh
# The release build, shared by the Dockerfile's build stage and scripts/container-steps.sh so that
# what CI exercises is what the image runs: a clean install with dev dependencies, the TypeScript
# build, then only what runs in production copied to OUT_DIR (dist/, production node_modules, the
# published JSON Schema, package.json, the health-check probe).
# Usage: scripts/build-release.sh OUT_DIR   (run from a clean copy of the repository)
set -eu
out="${1:?usage: build-release.sh OUT_DIR}"
npm ci --no-audit --no-fund
npm run build
npm prune --omit=dev --no-audit --no-fund
mkdir -p "$out"
cp -R dist node_modules schema package.json "$out"/
cp scripts/healthcheck.mjs "$out"/healthcheck.mjs
# Source maps stay (stack traces point at src/*.ts with --enable-source-maps); nothing else is needed.
echo "release in $out: $(du -sh "$out" | cut -f1)"
