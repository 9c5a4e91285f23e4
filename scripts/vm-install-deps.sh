#!/usr/bin/env bash
# What the VM test bed (tests/vm) needs: QEMU, a static busybox, lspci, cpio and kmod from
# Debian, plus Debian 12's own kernel package, DOWNLOADED (apt-get download) and unpacked
# with dpkg-deb -x into a cache directory. The kernel is never installed on this host.
#
#   scripts/vm-install-deps.sh [--print-kernel-dir]
#
# Cache: $DIS_VM_CACHE (default: build/vm/cache under the repository). The unpacked kernel
# lands in $DIS_VM_CACHE/kernel/<version>/ (boot/vmlinuz-*, lib/modules/<version>/ with a
# modules.dep made by `depmod -b`), and $DIS_VM_CACHE/kernel/current names that version.
# The kernel is the one Debian's linux-image-amd64 metapackage points at today, unless
# $DIS_VM_KERNEL_PACKAGE names one (e.g. linux-image-6.1.0-57-amd64).
# The lead can call vm_install_deps from scripts/install-deps.sh by sourcing this file.
set -euo pipefail

vm_install_deps() {
    local repo cache sudo=""
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    cache="${DIS_VM_CACHE:-$repo/build/vm/cache}"
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive

    local packages=(qemu-system-x86 busybox-static pciutils pci.ids cpio kmod gzip jq)
    local missing=() p
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    local updated=0
    if [ ${#missing[@]} -gt 0 ]; then
        echo "vm-install-deps: installing ${missing[*]}" >&2
        $sudo apt-get update -qq
        updated=1
        $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi

    # Which kernel package: the metapackage's dependency, e.g. linux-image-6.1.0-57-amd64.
    local pkg="${DIS_VM_KERNEL_PACKAGE:-}"
    if [ -z "$pkg" ]; then
        pkg="$(apt-cache depends linux-image-amd64 2>/dev/null |
            sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)"
        if [ -z "$pkg" ] && [ $updated -eq 0 ]; then
            $sudo apt-get update -qq
            pkg="$(apt-cache depends linux-image-amd64 2>/dev/null |
                sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)"
        fi
    fi
    if [ -z "$pkg" ]; then
        echo "vm-install-deps: error: cannot tell which linux-image-*-amd64 package is current" \
            "(apt-cache depends linux-image-amd64 found none)" >&2
        return 1
    fi
    local version="${pkg#linux-image-}"
    local dest="$cache/kernel/$version"
    if [ -f "$dest/.complete" ]; then
        printf '%s\n' "$version" >"$cache/kernel/current"
        echo "vm-install-deps: kernel $version already unpacked in $dest" >&2
        return 0
    fi

    mkdir -p "$cache/download"
    # apt-get download writes into the current directory; _apt must be able to write it or
    # apt warns and downloads unsandboxed (harmless for root, but noisy).
    chmod 0777 "$cache/download" 2>/dev/null || true
    echo "vm-install-deps: downloading $pkg (not installing it)" >&2
    download() {
        (cd "$cache/download" && apt-get download -qq "$pkg" 2>&1) | grep -v 'unsandboxed' >&2
        return "${PIPESTATUS[0]}"
    }
    # Stale package lists name a version the mirror no longer has: update once and retry.
    if ! download; then
        if [ $updated -eq 0 ]; then
            $sudo apt-get update -qq
            download || true
        fi
    fi
    local deb
    deb="$(find "$cache/download" -maxdepth 1 -name "${pkg}_*.deb" -printf '%T@ %p\n' |
        sort -rn | head -n1 | cut -d' ' -f2-)"
    if [ -z "$deb" ]; then
        echo "vm-install-deps: error: apt-get download $pkg produced no .deb" >&2
        return 1
    fi
    rm -rf "$dest"
    mkdir -p "$dest"
    dpkg-deb -x "$deb" "$dest"
    if [ ! -f "$dest/boot/vmlinuz-$version" ] || [ ! -d "$dest/lib/modules/$version" ]; then
        echo "vm-install-deps: error: $deb carries no boot/vmlinuz-$version or modules" >&2
        return 1
    fi
    # The package ships no modules.dep (its postinst runs depmod): make one for the tree.
    depmod -b "$dest" "$version"
    rm -f "$deb"
    touch "$dest/.complete"
    printf '%s\n' "$version" >"$cache/kernel/current"
    echo "vm-install-deps: kernel $version unpacked in $dest" >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    vm_install_deps
    if [ "${1:-}" = "--print-kernel-dir" ]; then
        repo="$(cd "$(dirname "$0")/.." && pwd)"
        cache="${DIS_VM_CACHE:-$repo/build/vm/cache}"
        echo "$cache/kernel/$(cat "$cache/kernel/current")"
    fi
fi
