#!/usr/bin/env bash
# Installs the Debian 12 packages keel needs to build, test and run. Idempotent: it only
# calls apt-get when something is missing, and never downloads anything else.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git python3 zlib1g-dev
  libboost1.81-dev libboost-json1.81-dev   # Boost.DLL (loading) + Boost.JSON (payloads)
  libpoco-dev                              # HTTP(S) client/server, processes
  libarchive-dev                           # .keelpkg archives
  libsodium-dev minisign                   # signatures (and the stock tool for interop tests)
  catch2 libtomlplusplus-dev libsqlite3-dev
  bubblewrap libseccomp-dev                # sandboxes
  tmux                                     # interactive UI tests
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "keel setup: missing packages (${missing[*]}) and not root; install them and retry" >&2
    exit 1
  fi
else
  SUDO=
fi

echo "keel setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
