#!/usr/bin/env bash
# Sets up the two Vulkan drivers that let Dawn (the `webgpu` npm package) run WebGPU on a machine without a GPU
# (see docs/ARCHITECTURE.md and DESIGN §5):
#   swiftshader  Debian `chromium` ships /usr/lib/chromium/vk_swiftshader_icd.json (f32 only; needs libvulkan1).
#   lavapipe     Mesa 25 from bookworm-backports, unpacked (not installed) into .cache/mesa/, with its own ICD json
#                (shader-f16). Debian 12's own lavapipe (Mesa 22) is rejected by Dawn, so the system one is not used.
# Idempotent: does nothing when both are already there. Installing needs root; otherwise it says what to run.
# Usage: bash scripts/gpu-env.sh          (or: npm run gpu-env)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SWIFTSHADER_ICD=/usr/lib/chromium/vk_swiftshader_icd.json
MESA_DIR="$ROOT/.cache/mesa"
MESA_ROOT="$MESA_DIR/root"
MESA_LIB="$MESA_ROOT/usr/lib/x86_64-linux-gnu"
LVP_ICD="$MESA_DIR/lvp_icd.json"
BACKPORTS_LIST=/etc/apt/sources.list.d/bookworm-backports.sources
# Packages whose bookworm versions are too old for Mesa 25; everything else it needs comes from bookworm itself.
FROM_BACKPORTS=(mesa-vulkan-drivers libdrm2 libdrm-amdgpu1)

say() { echo "[gpu-env] $*"; }

need_root() {
  if [[ $(id -u) -ne 0 ]]; then
    say "missing: $1"
    say "installing it needs root. Run:  sudo bash scripts/gpu-env.sh   (or as root: npm run gpu-env)"
    exit 1
  fi
}

have_vulkan_loader() { ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; }

apt_updated=0
apt_update() {
  if [[ $apt_updated -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    apt_updated=1
  fi
}

# --- 1. SwiftShader (from chromium) and the Vulkan loader -----------------------------------------------------
if [[ -f $SWIFTSHADER_ICD ]] && have_vulkan_loader; then
  say "swiftshader: $SWIFTSHADER_ICD (present)"
else
  need_root "Debian packages chromium and libvulkan1 (SwiftShader Vulkan driver + loader)"
  apt_update
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium libvulkan1
  [[ -f $SWIFTSHADER_ICD ]] || { say "chromium is installed but $SWIFTSHADER_ICD is missing"; exit 1; }
  say "swiftshader: installed"
fi

# --- 2. Mesa 25 lavapipe from bookworm-backports, unpacked into .cache/mesa ------------------------------------
lavapipe_ok() {
  [[ -f $LVP_ICD && -f $MESA_LIB/libvulkan_lvp.so ]] || return 1
  # Every shared library it links must resolve (bookworm deps on the system, libdrm from the unpacked folder).
  ! LD_LIBRARY_PATH="$MESA_LIB" ldd "$MESA_LIB/libvulkan_lvp.so" | grep -q 'not found'
}

if lavapipe_ok; then
  say "lavapipe: $LVP_ICD (present)"
else
  need_root "Mesa 25 lavapipe in $MESA_DIR (from bookworm-backports)"
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    say "adding the bookworm-backports apt source ($BACKPORTS_LIST)"
    cat >"$BACKPORTS_LIST" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    apt_updated=0
  fi
  apt_update
  mesa_version=$(apt-cache madison mesa-vulkan-drivers | awk -F'|' '/bookworm-backports/ {gsub(/ /, "", $2); print $2; exit}')
  [[ -n $mesa_version ]] || { say "mesa-vulkan-drivers is not offered by bookworm-backports"; exit 1; }
  # Mesa's other dependencies (LLVM, xcb, wayland, ...) are satisfied by bookworm: install them normally.
  mapfile -t mesa_deps < <(apt-cache show "mesa-vulkan-drivers=$mesa_version" | sed -n 's/^Depends: //p' | head -1 |
    tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g' | grep -v '^$')
  system_deps=()
  for dep in "${mesa_deps[@]}"; do
    [[ " ${FROM_BACKPORTS[*]} " == *" $dep "* ]] || system_deps+=("$dep")
  done
  say "installing Mesa's bookworm dependencies: ${system_deps[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --no-upgrade "${system_deps[@]}"

  say "downloading ${FROM_BACKPORTS[*]} (bookworm-backports, Mesa $mesa_version) into $MESA_DIR"
  rm -rf "$MESA_DIR"
  mkdir -p "$MESA_DIR/debs"
  chmod 777 "$MESA_DIR/debs" # apt-get download drops privileges to _apt when it can
  (cd "$MESA_DIR/debs" && apt-get download -q "${FROM_BACKPORTS[@]/%//bookworm-backports}")
  for deb in "$MESA_DIR"/debs/*.deb; do dpkg -x "$deb" "$MESA_ROOT"; done
  cat >"$LVP_ICD" <<EOF
{
  "file_format_version": "1.0.0",
  "ICD": { "library_path": "$MESA_LIB/libvulkan_lvp.so", "api_version": "1.4.305" }
}
EOF
  if ! lavapipe_ok; then
    say "lavapipe is unpacked but some libraries do not resolve:"
    LD_LIBRARY_PATH="$MESA_LIB" ldd "$MESA_LIB/libvulkan_lvp.so" | grep 'not found' || true
    exit 1
  fi
  say "lavapipe: $LVP_ICD (installed)"
fi

# --- 3. Check that Dawn accepts both (only once `npm ci` has installed the webgpu package) ----------------------
if [[ -f $ROOT/node_modules/webgpu/package.json ]]; then
  for driver in swiftshader lavapipe; do
    bash "$ROOT/scripts/with-gpu.sh" "$driver" node --input-type=module -e "
      import { create, globals } from '$ROOT/node_modules/webgpu/index.js';
      Object.assign(globalThis, globals);
      globalThis.__gpu = create([]);
      const adapter = await globalThis.__gpu.requestAdapter();
      if (!adapter) { console.error('[gpu-env] $driver: Dawn found no adapter'); process.exit(1); }
      const f = [...adapter.features];
      console.log('[gpu-env] $driver: Dawn adapter \"' + adapter.info.description + '\"' +
        (f.includes('shader-f16') ? ' with shader-f16' : ' without shader-f16'));
      process.exit(0);
    "
  done
else
  say "node_modules/webgpu is not installed yet (npm ci): skipping the Dawn check"
fi
say "ready. Run a command under a driver with: bash scripts/with-gpu.sh swiftshader|lavapipe CMD..."
