#!/usr/bin/env bash
# Sets up everything cordon needs on a Debian/Ubuntu machine, then runs the
# demo on the embedded default policy. Idempotent: a second run only checks.
#
#   scripts/setup.sh            install, build, check, run the demo
#   scripts/setup.sh --no-demo  install, build, check (used by scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
demo=1
quiet=0
for arg in "$@"; do
  case "$arg" in
    --no-demo) demo=0 ;;
    --quiet) quiet=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "setup: unknown option $arg" >&2; exit 2 ;;
  esac
done
step() { [ "$quiet" = 1 ] || printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

# 1. Debian packages: the sandbox (bubblewrap), its filters (libseccomp, gcc to
#    build cordon's helpers), network capture (nftables, iproute2), test tools.
packages=(bubblewrap libseccomp2 libseccomp-dev gcc make libc6-dev git iproute2 nftables util-linux ca-certificates curl socat passwd procps python3 openssl time gnome-keyring dbus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "Installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
    die "need root to install: apt-get install -y ${missing[*]}"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Node LTS (24) and the npm dependencies, pinned by package-lock.json.
node="$root/node_modules/node/bin/node"
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -x "$node" ] || [ "$(cat node_modules/.cordon-lock 2>/dev/null)" != "$lock_sum" ]; then
  step "Installing Node 24 and npm dependencies (npm ci)"
  command -v npm >/dev/null || die "npm is needed once to fetch Node 24: apt-get install -y npm (or any Node >= 18 with npm)"
  npm ci --no-audit --no-fund --loglevel=error
  "$node" --version >/dev/null || die "Node 24 did not install (node_modules/node/bin/node)"
  echo "$lock_sum" > node_modules/.cordon-lock
fi
[ "$quiet" = 1 ] || echo "node: $("$node" --version)"

# 3. cordon's native helpers (seccomp export, Landlock init, launcher).
step "Building native helpers"
scripts/build-native.sh

# 4. The CLI bundle.
step "Bundling the CLI"
PATH="$root/node_modules/.bin:$PATH" "$node" scripts/build.ts

# 5. Check the machine.
step "cordon doctor"
if ! bin/cordon doctor; then
  die "a required prerequisite is missing (see above)"
fi

if [ "$demo" = 1 ]; then
  step "cordon demo (embedded default policy)"
  bin/cordon demo
fi
