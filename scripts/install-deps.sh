#!/usr/bin/env bash
# Installs the Debian 12 packages dis-tool needs to build and test, if any are missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libcli11-dev nlohmann-json3-dev libpci-dev pciutils pci.ids catch2
  libncurses-dev prometheus-cpp-dev libsqlite3-dev libtomlplusplus-dev prometheus
  zlib1g-dev                    # the exporter gzips its scrapes (lib/metrics/exposition.cpp)
  tmux                          # dis-tool monitor's terminal tests (tests/cli/test_monitor_tmux.cpp)
  zsh jq ninja-build
  libtsan2                      # gcc's ThreadSanitizer runtime (scripts/ci-tsan.sh)
  clang-14 libclang-rt-14-dev   # libFuzzer and clang's sanitizer runtimes (scripts/ci-fuzz.sh)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
# Packages such as prometheus would start their service on install; the tests start their
# own instances on free loopback ports, so keep services from starting (policy-rc.d: 101).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  trap '$sudo rm -f "$policy"' EXIT
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
