#!/usr/bin/env bash
# Packs the library as npm would publish it and checks the tarball with publint and attw.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
tarball=$(npm pack --silent --pack-destination "$out" | tail -n 1)
npx publint "$out/$tarball" --strict
npx attw "$out/$tarball" --profile node16
rm -rf "$out"
