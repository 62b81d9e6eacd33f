#!/usr/bin/env bash
# Installs the Debian packages sw needs to build and test, when any is missing.
# As root it runs apt-get itself; otherwise it prints the one command to run and fails.
set -eu
PKGS="build-essential pkg-config libzmq3-dev libmsgpack-dev libyaml-dev zlib1g-dev libssl-dev
libjansson-dev libpcre2-dev libutf8proc-dev libopenblas-dev libcurl4-openssl-dev libmicrohttpd-dev
bats bats-assert bats-support
python3"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    echo "sw: installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends $missing >&2
else
    echo "sw: missing packages; run: sudo apt-get install -y$missing" >&2
    exit 1
fi
