#!/usr/bin/env bash
# Runs a command with one Vulkan driver selected for Dawn:
#   bash scripts/with-gpu.sh swiftshader|lavapipe|system CMD...
# swiftshader: Chromium's SwiftShader (f32 only). lavapipe: Mesa 25 unpacked by scripts/gpu-env.sh (shader-f16).
# system: whatever the machine's Vulkan loader finds (a real GPU); VK_ICD_FILENAMES is removed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SWIFTSHADER_ICD=/usr/lib/chromium/vk_swiftshader_icd.json
MESA_LIB="$ROOT/.cache/mesa/root/usr/lib/x86_64-linux-gnu"
LVP_ICD="$ROOT/.cache/mesa/lvp_icd.json"

usage() {
  echo "usage: bash scripts/with-gpu.sh swiftshader|lavapipe|system CMD..." >&2
  exit 2
}
[[ $# -ge 2 ]] || usage
driver=$1
shift

case $driver in
  swiftshader)
    if [[ ! -f $SWIFTSHADER_ICD ]]; then
      echo "[with-gpu] SwiftShader is missing ($SWIFTSHADER_ICD). Run: npm run gpu-env (as root)" >&2
      exit 1
    fi
    export VK_ICD_FILENAMES=$SWIFTSHADER_ICD
    ;;
  lavapipe)
    if [[ ! -f $LVP_ICD || ! -f $MESA_LIB/libvulkan_lvp.so ]]; then
      echo "[with-gpu] Mesa lavapipe is missing ($LVP_ICD). Run: npm run gpu-env (as root)" >&2
      exit 1
    fi
    export VK_ICD_FILENAMES=$LVP_ICD
    export LD_LIBRARY_PATH="$MESA_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    ;;
  system)
    unset VK_ICD_FILENAMES
    ;;
  *) usage ;;
esac
# Debian's Mesa 22 installs an implicit device-selection layer; it has nothing to choose between here.
export NODEVICE_SELECT=1
export RR_GPU_DRIVER=$driver
exec "$@"
