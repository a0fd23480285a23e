#!/bin/sh
# Quick start, command 1: install dependencies, build, and run the main job.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh"
"$root/scripts/build.sh"
cd "$root"
echo "setup: running the main job: mxverify selftest"
exec ./src/mxverify selftest
