#!/usr/bin/env bash
# Installs the Debian packages in .ci/apt-packages.txt that are missing.
# As root (CI) it uses apt-get directly; otherwise passwordless sudo, else it
# names the missing packages and fails.
set -eu
cd "$(dirname "$0")"
pkgs=$(grep -v '^#' apt-packages.txt | grep -v '^$')
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing system packages:$missing" >&2
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "error: missing system packages:$missing" >&2
  echo "       run: sudo apt-get install$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
