#!/usr/bin/env bash
# Builds the guest's busybox initramfs (newc cpio, gzip) for tests/vm/run.sh:
#   busybox-static and its applet links, the built dis-tool + libdis + libsisci, lspci and
#   setpci, every shared library they need (ldd) with the dynamic loader, pci.ids, the
#   kernel modules the guest loads (with their dependencies, in load order), /init and the
#   guest check scripts.
#
#   tests/vm/build-initramfs.sh BUILD_DIR KERNEL_DIR OUT.cpio.gz
#
# BUILD_DIR is a CMake build tree holding tools/dis-tool; KERNEL_DIR is an unpacked Debian
# kernel package (scripts/vm-install-deps.sh --print-kernel-dir).
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 BUILD_DIR KERNEL_DIR OUT.cpio.gz" >&2
    exit 2
fi
build="$(cd "$1" && pwd)"
kdir="$(cd "$2" && pwd)"
out="$3"
here="$(cd "$(dirname "$0")" && pwd)"

die() {
    echo "build-initramfs: error: $*" >&2
    exit 1
}

# The modules the guest loads; their dependencies come from the kernel tree's modules.dep.
guest_modules=(nvme e1000e vfio-pci)

dis_tool="$build/tools/dis-tool"
[ -x "$dis_tool" ] || die "$dis_tool is missing (build the dis-tool target first)"
# disd: the guest's lend checks (guest/lend.sh) run a node.
disd="$build/tools/disd/disd"
[ -x "$disd" ] || die "$disd is missing (build the disd target first)"
busybox="$(command -v busybox || true)"
[ -n "$busybox" ] || die "busybox is missing (scripts/vm-install-deps.sh installs busybox-static)"
file -L "$busybox" | grep -q 'statically linked' ||
    die "$busybox is not static (install busybox-static)"
lspci="$(command -v lspci || true)"
[ -n "$lspci" ] || die "lspci is missing (install pciutils)"
setpci="$(command -v setpci || true)"
[ -f /usr/share/misc/pci.ids ] || die "/usr/share/misc/pci.ids is missing (install pci.ids)"
kver="$(basename "$(ls -d "$kdir"/lib/modules/*/ | head -n1)")"
[ -f "$kdir/lib/modules/$kver/modules.dep" ] ||
    die "$kdir/lib/modules/$kver/modules.dep is missing (run scripts/vm-install-deps.sh)"

root="$(mktemp -d "${TMPDIR:-/tmp}/dis-vm-initramfs.XXXXXX")"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,root,usr/bin,usr/share/misc,vm}
mkdir -p "$root/lib/x86_64-linux-gnu" "$root/lib64"

# busybox and one link per applet.
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

# ELF programs and libraries, stripped copies (the build tree's are unstripped, ~60 MB).
libdir="$root/lib/x86_64-linux-gnu"
copy_elf() { # SRC DEST
    cp -L "$1" "$2"
    strip --strip-unneeded "$2" 2>/dev/null || true
}
copy_elf "$dis_tool" "$root/usr/bin/dis-tool"
copy_elf "$disd" "$root/usr/bin/disd"
copy_elf "$lspci" "$root/usr/bin/lspci"
[ -n "$setpci" ] && copy_elf "$setpci" "$root/usr/bin/setpci"
cp /usr/share/misc/pci.ids "$root/usr/share/misc/pci.ids"

# Every library ldd resolves for the programs, by the name the program asks for.
declare -A seen=()
for prog in "$dis_tool" "$disd" "$lspci" ${setpci:+"$setpci"}; do
    while read -r name path; do
        [ -n "$path" ] || continue
        [ -n "${seen[$name]:-}" ] && continue
        seen[$name]=1
        [ -f "$path" ] || die "ldd $prog: $name resolves to missing $path"
        copy_elf "$path" "$libdir/$name"
    done < <(ldd "$prog" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }')
    if ldd "$prog" | grep -q 'not found'; then
        die "ldd $prog: $(ldd "$prog" | grep 'not found' | tr '\n' ' ')"
    fi
done
loader="$(ldd "$dis_tool" | awk '$1 ~ /^\/.*ld-linux/ { print $1 }')"
[ -n "$loader" ] || die "cannot find the dynamic loader of $dis_tool"
cp -L "$loader" "$root/lib64/$(basename "$loader")"

# Kernel modules with their dependencies, in load order, paths relative to /lib/modules/KVER.
mkdir -p "$root/etc/dis-vm"
moddir="$kdir/lib/modules/$kver"
: >"$root/etc/dis-vm/modules.list"
declare -A mod_seen=()
for m in "${guest_modules[@]}"; do
    deps="$(modprobe -d "$kdir" -S "$kver" --show-depends "$m")" ||
        die "modprobe --show-depends $m found nothing in $moddir"
    while read -r verb path _; do
        [ "$verb" = insmod ] || continue
        rel="${path#"$moddir"/}"
        [ -n "${mod_seen[$rel]:-}" ] && continue
        mod_seen[$rel]=1
        mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
        cp "$path" "$root/lib/modules/$kver/$rel"
        echo "$rel" >>"$root/etc/dis-vm/modules.list"
    done <<<"$deps"
done
echo "$kver" >"$root/etc/dis-vm/kernel-version"

# /init and the guest checks.
install -m 0755 "$here/guest/init" "$root/init"
for f in "$here"/guest/*.sh; do
    install -m 0755 "$f" "$root/vm/$(basename "$f")"
done

mkdir -p "$(dirname "$out")"
(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0 |
    gzip -1 >"$out.tmp")
mv "$out.tmp" "$out"
echo "build-initramfs: $out ($(du -h "$out" | cut -f1), kernel $kver, modules:" \
    "$(wc -l <"$root/etc/dis-vm/modules.list"))" >&2
