#!/bin/sh
# Build cordon's native helpers into build/native/ (see native/Makefile).
# Idempotent: make rebuilds only what changed. Exits non-zero on any failure,
# printing the apt-get command when a build prerequisite is missing.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/build/native"
apt="apt-get install -y gcc make libc6-dev libseccomp-dev"

missing=""
command -v gcc >/dev/null 2>&1 || missing="$missing gcc"
command -v make >/dev/null 2>&1 || missing="$missing make"

if [ -z "$missing" ]; then
	# Headers and libraries, checked by compiling: paths differ per distro.
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT INT TERM
	printf '#include <seccomp.h>\nint main(void){return seccomp_syscall_resolve_name("read")<0;}\n' >"$tmp/s.c"
	gcc -o "$tmp/s" "$tmp/s.c" -Wl,-Bstatic -lseccomp -Wl,-Bdynamic >/dev/null 2>&1 || missing="$missing libseccomp-dev"
	printf 'int main(void){return 0;}\n' >"$tmp/c.c"
	gcc -static-pie -o "$tmp/c" "$tmp/c.c" >/dev/null 2>&1 || missing="$missing libc6-dev(static)"
fi

if [ -n "$missing" ]; then
	echo "build-native: missing:$missing" >&2
	echo "build-native: install them with:  $apt" >&2
	exit 1
fi

make -C "$root/native" OUT="$out" >&2
echo "build-native: helpers in $out" >&2
