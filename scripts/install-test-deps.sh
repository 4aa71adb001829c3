#!/usr/bin/env bash
# Installs the Debian packages the test suite uses, if missing: python3-grpcio (gRPC C-core
# xDS client), prometheus (analysis provider) and
# docker-compose (validates docker-compose.yml without an engine), openssl (test certificates),
# etcd-server (the etcd store's tests start their own members on loopback), chromium (the
# dashboard's browser tests drive Debian's Chromium with playwright-core: no browser download).
# Needs root or sudo.
set -euo pipefail
wanted=(python3-grpcio prometheus docker-compose openssl etcd-server chromium)
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
echo "installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
