#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/vm/vmrun.sh KERNEL CMD [ARGS...]
#
# Boot a stock Debian kernel in QEMU and run CMD inside it, in the current
# directory, on the host's own userland. Exits with CMD's exit status.
#
#   KERNEL  6.1   the kernel Debian 12's linux-image-amd64 depends on
#           6.12  the kernel linux-image-6.12-amd64 depends on
#           linux-image-*  an exact package name
#
# Why it is built this way:
#   - Nothing is installed on the host: the kernel .deb is fetched with
#     `apt-get download` and unpacked with `dpkg -x` into tests/vm/cache.
#   - The guest's root is the host's / over virtio-9p, read-only, under a tmpfs
#     overlay: the binaries just built and every library and tool they need run
#     unchanged, and nothing the guest writes reaches the host, except the
#     current directory, which is mounted read-write at the same path so CMD can
#     leave results there.
#   - /dev/kvm on these machines is a nested paravirtual one that cannot run a
#     stock kernel, so the default is TCG; booting the uncompressed vmlinux (PVH
#     entry) instead of the bzImage saves about 2 s of emulated decompression.
#   - Debian ships modules compressed; the initramfs's busybox modprobe would
#     first hand the compressed file to finit_module() and log an "Invalid ELF"
#     error for each. They are decompressed once, and `busybox depmod` writes
#     modules.dep because the host has no kmod.
#   - The exit status comes back through a file in a per-run control directory
#     shared over 9p, with a console marker as fallback; per-run directories and
#     a flock around cache preparation let several VMs run at once.
#
# Environment:
#   VMRUN_MEM (2G)  VMRUN_SMP (2)  VMRUN_TIMEOUT seconds (1200, then exit 124)
#   VMRUN_MODULES   modules loaded before CMD ("tls kcm aesni_intel ghash_clmulni_intel":
#                   the guest has no udev to load the CPU's AES-NI and CLMUL drivers,
#                   without which kTLS runs on aes-generic; others autoload)
#   VMRUN_ACCEL     tcg (default) or kvm
#   VMRUN_QUIET=1   print only CMD's output, not the boot and init chatter
#   VMRUN_PASSENV   names of host variables to pass to CMD (PATH, HOME, LANG,
#                   LC_ALL, TERM always are)
#   VMRUN_APPEND    extra kernel command line
#   VMRUN_CACHE     cache directory (tests/vm/cache)
# Exit: CMD's status; 124 timeout; 125 the VM did not boot or gave no status.
set -euo pipefail

die() { echo "vmrun: $*" >&2; exit 125; }
if [ $# -lt 2 ]; then
	sed -n '4,7p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi

KSEL=$1
shift
HERE=$(cd "$(dirname "$0")" && pwd -P)
CACHE=${VMRUN_CACHE:-$HERE/cache}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd -P)
MODULES=${VMRUN_MODULES-tls kcm aesni_intel ghash_clmulni_intel}

for tool in qemu-system-x86_64 apt-get dpkg flock xz zstd gzip; do
	command -v "$tool" >/dev/null ||
		die "'$tool' is missing; run scripts/install-deps.sh --test"
done

# ------------------------------------------------------------------ which package
# Resolved on every run so the VMs follow Debian's current stock kernel; the
# last answer is remembered for when apt-cache cannot answer (no lists).
resolve_pkg() {
	local meta=$1 memo=$CACHE/resolved-$1 pkg
	pkg=$(apt-cache depends "$meta" 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
	if [ -n "$pkg" ]; then
		echo "$pkg" >"$memo.tmp" && mv "$memo.tmp" "$memo"
	elif [ -s "$memo" ]; then
		pkg=$(cat "$memo")
	else
		die "cannot resolve $meta with apt-cache; run apt-get update"
	fi
	echo "$pkg"
}
case $KSEL in
6.1)           PKG=$(resolve_pkg linux-image-amd64) ;;
6.12)          PKG=$(resolve_pkg linux-image-6.12-amd64) ;;
linux-image-*) PKG=$KSEL ;;
*)             die "unknown kernel '$KSEL': use 6.1, 6.12 or a linux-image-* package name" ;;
esac

KDIR=$CACHE/k/$PKG
BB=$CACHE/busybox

# ------------------------------------------------------------------ cache (serialised)
# Everything below until 'flock -u' writes into the shared cache; two runners
# started together must not both unpack the same kernel.
exec 9>"$CACHE/.lock"
flock 9

fetch_busybox() {
	local d
	[ -x "$BB" ] && return 0
	# The initramfs needs a static busybox; the host's is static only if it
	# comes from busybox-static, otherwise take that package's binary.
	if dpkg-query -W -f='${db:Status-Abbrev}' busybox-static 2>/dev/null | grep -q '^ii' &&
	   [ -x /bin/busybox ]; then
		cp /bin/busybox "$BB.tmp"
	else
		d=$(mktemp -d "$CACHE/bb.XXXXXX")
		(cd "$d" && apt-get download -q -o APT::Sandbox::User=root busybox-static >&2) || die "apt-get download busybox-static failed"
		dpkg -x "$d"/busybox-static_*.deb "$d/x"
		cp "$d/x/bin/busybox" "$BB.tmp"
		rm -rf "$d"
	fi
	mv "$BB.tmp" "$BB"
}

# Like linux/scripts/extract-vmlinux: find the compressed payload in the bzImage
# by its magic and keep the first candidate that decompresses to an ELF file.
extract_vmlinux() {
	local bz=$1 out=$2 magic unz pos
	for magic in '\xFD\x37\x7A\x58\x5A\x00:xz -dcq' '\x28\xB5\x2F\xFD:zstd -dcq' '\x1F\x8B\x08:gzip -dcq'; do
		unz=${magic#*:}
		for pos in $(LC_ALL=C grep -obUaP "${magic%%:*}" "$bz" | cut -d: -f1); do
			tail -c+$((pos + 1)) "$bz" | $unz >"$out" 2>/dev/null || true
			if [ "$(head -c4 "$out" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
				return 0
			fi
		done
	done
	rm -f "$out"
	return 1
}

prepare_kernel() {
	local deb krel moddir
	[ -e "$KDIR/.ready" ] && return 0
	echo "vmrun: preparing $PKG in $KDIR (once)" >&2
	rm -rf "$KDIR"
	mkdir -p "$KDIR/deb"
	(cd "$KDIR/deb" && apt-get download -q -o APT::Sandbox::User=root "$PKG" >&2) || die "apt-get download $PKG failed"
	deb=$(ls "$KDIR"/deb/*.deb)
	dpkg -x "$deb" "$KDIR/root"
	rm -rf "$KDIR/deb"
	krel=$(ls "$KDIR/root/lib/modules")
	moddir=$KDIR/root/lib/modules/$krel
	# Without the ELF the bzImage still boots, only slower.
	extract_vmlinux "$KDIR/root/boot/vmlinuz-$krel" "$KDIR/vmlinux" ||
		echo "vmrun: no vmlinux found in the bzImage; booting the bzImage" >&2
	find "$moddir" -name '*.ko.xz' -print0 | xargs -0 -r -P"$(nproc)" -n 64 xz -dq
	find "$moddir" -name '*.ko.zst' -print0 | xargs -0 -r -P"$(nproc)" -n 64 zstd -dq --rm
	find "$moddir" -name '*.ko.gz' -print0 | xargs -0 -r -P"$(nproc)" -n 64 gzip -dq
	"$BB" depmod -b "$KDIR/root" "$krel" || die "busybox depmod failed for $krel"
	touch "$KDIR/.ready"
}

fetch_busybox
prepare_kernel
KREL=$(ls "$KDIR/root/lib/modules")
MODDIR=$KDIR/root/lib/modules/$KREL

# ------------------------------------------------------------------ initramfs
# Only what is needed to reach the 9p root: busybox, four modules and their
# dependencies, and /init. Keyed by this script's hash so editing /init below
# rebuilds it.
INITRD=$KDIR/initrd-$(md5sum <"$0" | cut -c1-10).cpio.gz

# modules.dep lines look like "kernel/net/9p/9pnet.ko: kernel/...": print the
# path of module $1 (0) or its dependencies (1).
modinfo_dep() {
	awk -F': *' -v want="$1" -v field="$2" '{
		n = $1; sub(/.*\//, "", n); sub(/\.ko.*$/, "", n); gsub(/-/, "_", n)
		if (n == want) { print (field == 0 ? $1 : $2); exit }
	}' "$MODDIR/modules.dep"
}

build_initrd() {
	local ir n=0 m
	declare -A have=()
	ir=$(mktemp -d "$KDIR/ir.XXXXXX")
	mkdir -p "$ir"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,mods,ctl,host,ovl,newroot} \
		"$ir/lib/modules/$KREL"
	cp "$BB" "$ir/bin/busybox"
	# insmod needs dependency order; the numeric prefix keeps it in the glob.
	add_mod() {
		local name=${1//-/_} path d
		[ -z "${have[$name]:-}" ] || return 0
		have[$name]=1
		path=$(modinfo_dep "$name" 0)
		[ -n "$path" ] || return 0	# built into this kernel
		for d in $(modinfo_dep "$name" 1); do
			d=${d##*/}
			add_mod "${d%%.ko*}"
		done
		n=$((n + 1))
		cp "$MODDIR/$path" "$ir/mods/$(printf %02d $n)-$name.ko"
	}
	for m in virtio_pci 9pnet_virtio 9p overlay; do
		add_mod "$m"
	done
	cat >"$ir/init" <<'EOF'
#!/bin/busybox sh
# vmrun guest init: mount the host over 9p, run the command, report, power off.
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
fail() {
	echo "vmrun-init: $*"
	echo "@@vmrun-end ${VMRUN_TOKEN:-none} 125"
	poweroff -f
	sleep 10
}
for m in /mods/*.ko; do
	insmod "$m" || fail "insmod $m failed"
done
O=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$O" kpctl /ctl || fail "cannot mount the control directory"
. /ctl/env
mount -t 9p -o "$O,ro,cache=loose" kphost /host || fail "cannot mount the host root"
mount --bind "/host$VMRUN_MODDIR" "/lib/modules/$VMRUN_KREL" || fail "cannot bind the modules"
# Autoloaded modules (request_module) run this busybox from the initramfs root.
echo /sbin/modprobe >/proc/sys/kernel/modprobe
for m in $VMRUN_MODULES; do
	modprobe "$m" || echo "vmrun-init: modprobe $m failed"
done
mount -t tmpfs -o mode=755 tmpfs /ovl
mkdir -p /ovl/upper /ovl/work
mount -t overlay -o lowerdir=/host,upperdir=/ovl/upper,workdir=/ovl/work overlay /newroot ||
	fail "cannot mount the overlay root"
R=/newroot
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
# devtmpfs has no /dev/fd (udev makes it): bash's <(...) needs it.
ln -sf /proc/self/fd $R/dev/fd
ln -sf /proc/self/fd/0 $R/dev/stdin
ln -sf /proc/self/fd/1 $R/dev/stdout
ln -sf /proc/self/fd/2 $R/dev/stderr
mount -t bpf bpf $R/sys/fs/bpf
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup
mount -t debugfs debugfs $R/sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs $R/sys/kernel/tracing 2>/dev/null
mount -t tmpfs -o mode=755 tmpfs $R/run
mount -t tmpfs -o mode=1777 tmpfs $R/tmp
mkdir -p "$R/lib/modules/$VMRUN_KREL" "$R$VMRUN_PWD" $R/run/vmrun $R/run/vmrun-bin
mount --bind "/lib/modules/$VMRUN_KREL" "$R/lib/modules/$VMRUN_KREL"
mount --bind /ctl $R/run/vmrun
mount -t 9p -o "$O" kpwork "$R$VMRUN_PWD" || fail "cannot mount the working directory"
# The host has no kmod; give the guest busybox's module tools.
cp /bin/busybox $R/run/vmrun-bin/
for a in lsmod modprobe insmod rmmod modinfo; do
	ln -s busybox $R/run/vmrun-bin/$a
done
ip link set lo up
hostname "vm-$VMRUN_KREL"
echo "@@vmrun-begin $VMRUN_TOKEN"
chroot $R /usr/bin/env -i /bin/bash -c \
	'. /run/vmrun/passenv; export PATH="$PATH:/run/vmrun-bin"; cd "$1" && exec /bin/bash /run/vmrun/cmd' \
	vmrun "$VMRUN_PWD"
rc=$?
echo "$rc" >/ctl/rc
sync
echo "@@vmrun-end $VMRUN_TOKEN $rc"
poweroff -f
EOF
	chmod +x "$ir/init"
	(cd "$ir" && find . | "$BB" cpio -o -H newc 2>/dev/null) | gzip -1 >"$INITRD.tmp"
	mv "$INITRD.tmp" "$INITRD"
	rm -rf "$ir"
}
if [ ! -e "$INITRD" ]; then
	rm -f "$KDIR"/initrd-*.cpio.gz
	build_initrd
fi
flock -u 9
exec 9>&-

# ------------------------------------------------------------------ run
mkdir -p "$CACHE/run"
CTL=$(mktemp -d "$CACHE/run/ctl.XXXXXX")
trap 'rm -rf "$CTL"' EXIT
TOKEN=$RANDOM$RANDOM$RANDOM

printf '%q ' "$@" >"$CTL/cmd"
echo >>"$CTL/cmd"
{
	printf 'VMRUN_TOKEN=%q\n' "$TOKEN"
	printf 'VMRUN_KREL=%q\n' "$KREL"
	printf 'VMRUN_MODDIR=%q\n' "$MODDIR"
	printf 'VMRUN_PWD=%q\n' "$(pwd -P)"
	printf 'VMRUN_MODULES=%q\n' "$MODULES"
} >"$CTL/env"
{
	echo 'export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
	for v in PATH HOME LANG LC_ALL TERM ${VMRUN_PASSENV:-}; do
		if [ -n "${!v+x}" ]; then
			printf 'export %s=%q\n' "$v" "${!v}"
		fi
	done
} >"$CTL/passenv"

case ${VMRUN_ACCEL:-tcg} in
tcg) ACCEL=(-accel tcg,thread=multi -cpu max) ;;
kvm) ACCEL=(-accel kvm -cpu host) ;;
*)   die "VMRUN_ACCEL must be tcg or kvm" ;;
esac
KIMG=$KDIR/root/boot/vmlinuz-$KREL
[ -s "$KDIR/vmlinux" ] && KIMG=$KDIR/vmlinux

QEMU=(qemu-system-x86_64 "${ACCEL[@]}" -machine q35 -m "${VMRUN_MEM:-2G}" -smp "${VMRUN_SMP:-2}"
	-nodefaults -no-user-config -display none -no-reboot
	-chardev stdio,id=con,signal=off -serial chardev:con
	-kernel "$KIMG" -initrd "$INITRD"
	-append "console=ttyS0 quiet loglevel=4 panic=-1 oops=panic rdinit=/init ${VMRUN_APPEND:-}"
	-virtfs "local,path=/,mount_tag=kphost,security_model=none,readonly=on,multidevs=remap"
	-virtfs "local,path=$CTL,mount_tag=kpctl,security_model=none"
	-virtfs "local,path=$(pwd -P),mount_tag=kpwork,security_model=none,multidevs=remap"
	-device virtio-rng-pci)

TIMEOUT=${VMRUN_TIMEOUT:-1200}
START=$SECONDS
if [ "${VMRUN_QUIET:-0}" = 1 ]; then
	FILTER=(sed -u -n "s/\r\$//; /^@@vmrun-begin $TOKEN\$/,/^@@vmrun-end $TOKEN /{/^@@vmrun-[a-z]* $TOKEN/!p}")
else
	FILTER=(sed -u "s/\r\$//")
fi
set +e
timeout -k 10 "$TIMEOUT" "${QEMU[@]}" </dev/null 2>&1 | tee "$CTL/console" | "${FILTER[@]}"
QRC=${PIPESTATUS[0]}
set -e

if [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then
	echo "vmrun: $KREL: timed out after ${TIMEOUT}s" >&2
	exit 124
fi
RC=
if [ -s "$CTL/rc" ]; then
	RC=$(cat "$CTL/rc")
else
	RC=$(tr -d '\r' <"$CTL/console" | sed -n "s/^@@vmrun-end $TOKEN \([0-9]*\)\$/\1/p" | tail -n1)
fi
if grep -q "^@@vmrun-begin $TOKEN" "$CTL/console"; then
	started=1
else
	started=0
fi
if [ -z "$RC" ] || { [ "$RC" = 125 ] && [ $started = 0 ]; }; then
	# The quiet filter hid the reason: show the end of the console.
	if [ "${VMRUN_QUIET:-0}" = 1 ]; then
		tr -d '\r' <"$CTL/console" | tail -n 30 | sed 's/^/vmrun: console: /' >&2
	fi
	if [ $started = 1 ]; then
		echo "vmrun: $KREL stopped before CMD finished (qemu exit $QRC; kernel panic?)" >&2
	else
		echo "vmrun: $KREL did not boot (qemu exit $QRC)" >&2
	fi
	exit 125
fi
[ "${VMRUN_QUIET:-0}" = 1 ] || echo "vmrun: $KREL: exit $RC after $((SECONDS - START))s" >&2
exit "$RC"
