#!/usr/bin/env bash
# Install every Debian package the build, tests and demo need. Idempotent:
# does nothing (and needs no network) when everything is already present.
set -eu

PKGS="make gcc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
systemtap-sdt-dev libhiredis-dev redis-server redis-tools
libprotobuf-c-dev protobuf-c-compiler libcurl4-openssl-dev
libcmocka-dev pkg-config python3 python3-redis binutils procps
prometheus"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
# The OTLP test peer runs on Node.js; the base image usually has it.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages:$missing" >&2
	echo "deps.sh: run as root (or: sudo $0) to install them" >&2
	exit 1
fi
echo "deps.sh: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
