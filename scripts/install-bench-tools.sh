#!/bin/sh
# The load generators and the reference proxy `npm run bench` drives (Debian 12 packages).
set -eu
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends wrk nghttp2-client nginx-light
