#!/usr/bin/env bash
# Regenerate include/gadget/{amd64,arm64}/vmlinux.h from the BTF of Debian kernel packages.
#
#   toolchain/sdk/regen-vmlinux.sh                 # the pinned kernels below
#   KVER=6.12.117+deb12 toolchain/sdk/regen-vmlinux.sh
#
# Needs root (apt-get), bpftool, llvm-objcopy-19 and the decompressor the kernel uses.
# The output only depends on the kernel package, so running it twice gives identical files.
set -euo pipefail

KVER="${KVER:-6.12.117+deb12}"
AMD64_PKG="${AMD64_PKG:-linux-image-${KVER}-cloud-amd64}"
ARM64_PKG="${ARM64_PKG:-linux-image-${KVER}-arm64}"

here="$(cd "$(dirname "$0")" && pwd)"
out="$here/include/gadget"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

need() { command -v "$1" >/dev/null || { echo "error: $1 not found: apt-get install $2" >&2; exit 1; }; }
need bpftool bpftool
need llvm-objcopy-19 llvm-19
need python3 python3

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  apt-get update -qq
fi

# Carve the kernel BTF out of a kernel image: an ELF vmlinux (use .BTF), or a raw image
# that embeds the BTF blob (find the header and cut header + types + strings).
extract_btf() {
  python3 - "$1" "$2" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
out = sys.argv[2]
if data[:4] == b"\x7fELF":
    sys.exit(3)  # caller uses llvm-objcopy for ELF files
pos = 0
while True:
    pos = data.find(b"\x9f\xeb\x01\x00", pos)
    if pos < 0:
        sys.exit("no BTF header found in " + sys.argv[1])
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<IIIII", data, pos + 4)
    if hdr_len == 24 and type_off == 0 and str_off == type_len and type_len > 1 << 20:
        end = pos + hdr_len + str_off + str_len
        open(out, "wb").write(data[pos:end])
        break
    pos += 4
PY
}

# bzImage -> compressed payload -> ELF vmlinux (compression from the kernel config)
bzimage_to_elf() {
  local img="$1" config="$2" dst="$3"
  python3 - "$img" "$work/payload" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
setup_sects = d[0x1F1] or 4
off, length = struct.unpack_from("<II", d, 0x248)
start = (setup_sects + 1) * 512 + off
open(sys.argv[2], "wb").write(d[start:start + length])
PY
  # zstd kernels append the uncompressed size (4 bytes) after the frame: drop it
  if grep -q '^CONFIG_KERNEL_ZSTD=y' "$config"; then need zstd zstd; head -c -4 "$work/payload" | zstd -dcq > "$dst"
  elif grep -q '^CONFIG_KERNEL_LZ4=y' "$config"; then need lz4 lz4; lz4 -dcq "$work/payload" > "$dst"
  elif grep -q '^CONFIG_KERNEL_XZ=y' "$config"; then need xz xz-utils; xz -dcq "$work/payload" > "$dst" || true
  elif grep -q '^CONFIG_KERNEL_GZIP=y' "$config"; then gzip -dcq "$work/payload" > "$dst" || true
  else echo "error: unknown kernel compression in $config" >&2; exit 1; fi
}

gen() {
  local arch="$1" pkg="$2"
  local d="$work/$arch"
  mkdir -p "$d"
  echo "== $arch: $pkg"
  (cd "$d" && apt-get download -qq "$pkg" >/dev/null)
  dpkg-deb -x "$d"/*.deb "$d/root"
  local img config
  img="$(ls "$d"/root/boot/vmlinuz-* | head -1)"
  config="$(ls "$d"/root/boot/config-* | head -1)"
  if head -c 4 "$img" | od -An -tx1 | grep -q '1f 8b'; then
    gzip -dc < "$img" > "$d/Image"; img="$d/Image"
  fi
  if [ "$(head -c 2 "$img")" = "MZ" ] && [ "$arch" = amd64 ]; then
    bzimage_to_elf "$img" "$config" "$d/vmlinux"
    llvm-objcopy-19 --dump-section .BTF="$d/btf" "$d/vmlinux" /dev/null
  else
    extract_btf "$img" "$d/btf"
  fi
  mkdir -p "$out/$arch"
  bpftool btf dump file "$d/btf" format c > "$out/$arch/.vmlinux.h.tmp"
  grep -q '__VMLINUX_H__' "$out/$arch/.vmlinux.h.tmp"
  mv "$out/$arch/.vmlinux.h.tmp" "$out/$arch/vmlinux.h"
  echo "   $(basename "$img") -> $out/$arch/vmlinux.h ($(wc -c < "$out/$arch/vmlinux.h") bytes, $(sha256sum "$out/$arch/vmlinux.h" | cut -c1-16)...)"
  apt-cache show "$pkg" 2>/dev/null | awk '/^Version:/{print "   package version " $2; exit}'
}

gen amd64 "$AMD64_PKG"
gen arm64 "$ARM64_PKG:arm64"
