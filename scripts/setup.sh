#!/usr/bin/env bash
# Installs the Debian 12 packages tmr needs, only those that are missing.
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config clang-format
          libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev libfmt-dev
          libtbb-dev libstarpu-dev clang libomp-dev librsvg2-bin
          pybind11-dev python3-dev python3-numpy python3-pytest
          ${TMR_EXTRA_PACKAGES:-})
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
