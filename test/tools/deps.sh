#!/usr/bin/env bash
# test/tools/deps.sh: install every Debian package that building, testing and
# the demo need. Does nothing when they are all present already.
set -euo pipefail

packages=(
	build-essential pkg-config
	postgresql-15 postgresql-server-dev-15 postgresql-common
	postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
	libcurl4-openssl-dev libmicrohttpd-dev
	chromium
	python3 python3-mpmath
	valgrind procps curl iproute2
	stress-ng
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing Debian packages: ${missing[*]}"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
