#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# install-deps.sh [--test] [--bench]
#
# Install the Debian 12 packages kproxy needs, and only those that are missing:
# `make run`, `make test` and CI call this every time, so when everything is
# already there it must be quick and print nothing. Also mounts bpffs at
# /sys/fs/bpf, since kproxyd pins its maps there and some hosts boot without it.
#
#   (no option)  build and run: compilers, libbpf, bpftool, gnutls, iproute2
#   --test       also what tests/run.sh needs: QEMU, busybox-static for the VM
#                initramfs, xz/zstd for the kernel modules, socat/python3/curl peers,
#                gnutls-bin/openssl (TLS peers, certtool), libclang-rt-19-dev (libFuzzer),
#                nginx (the HTTP backend of the kmux HTTP tests), memcached (a real
#                peer of ID-tagged kmux: its binary protocol's opaque)
#   --bench      also the proxies and tools the benchmarks compare against
set -euo pipefail

usage() { echo "usage: $0 [--test] [--bench]" >&2; exit 2; }

base=(make gcc clang-19 llvm-19 libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config
      libjson-c-dev libgnutls28-dev iproute2 procps)
test_pkgs=(qemu-system-x86 busybox-static xz-utils zstd socat python3 curl util-linux netcat-openbsd
           gnutls-bin openssl libclang-rt-19-dev nginx memcached)
bench_pkgs=(haproxy socat gnuplot-nox iperf3 nginx libnginx-mod-stream wrk)

want=("${base[@]}")
for arg in "$@"; do
	case $arg in
	--test)  want+=("${test_pkgs[@]}") ;;
	--bench) want+=("${bench_pkgs[@]}") ;;
	-h|--help) usage ;;
	*) echo "install-deps: unknown option '$arg'" >&2; usage ;;
	esac
done

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: must run as root (it installs Debian packages and mounts bpffs); try: sudo $0 $*" >&2
	exit 1
fi

# dpkg-query prints one status line per known package; a package it has never
# heard of goes to stderr and is simply absent from the output, so anything not
# reported as "install ok installed" is missing.
missing=()
declare -A seen=()
installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${want[@]}" 2>/dev/null || true)
for p in "${want[@]}"; do
	[ -z "${seen[$p]:-}" ] || continue
	seen[$p]=1
	if ! grep -qE "^$p ii" <<<"$installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# Packages that come with a service (nginx) must not start it here: the
	# benchmark runs its own instance in its own network namespace.
	policy=/usr/sbin/policy-rc.d ours=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && ours=1
		trap '[ -n "$ours" ] && rm -f "$policy"' EXIT
	fi
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	[ -n "$ours" ] && rm -f "$policy"
	ours=
	trap - EXIT
fi

# kproxyd pins maps under /sys/fs/bpf/kproxy; without a bpffs there the pins fail.
if [ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" != bpf_fs ]; then
	mkdir -p /sys/fs/bpf
	mount -t bpf bpf /sys/fs/bpf || {
		echo "install-deps: cannot mount bpffs at /sys/fs/bpf (is CONFIG_BPF_SYSCALL set?)" >&2
		exit 1
	}
fi
