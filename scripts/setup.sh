#!/bin/sh
# Quick start, command 1: install dependencies, build, and run the main job
# (a self-test, then the default gate on the CPU backend).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh"
"$root/scripts/build.sh"
cd "$root"
./src/mxverify selftest
echo "setup: running the main job: the default gate (CPU backend)"
exec ./src/mxverify gate --suite default
