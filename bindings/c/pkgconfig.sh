#!/usr/bin/env bash
# Writes culvert.pc, the pkg-config file of the C binding, for libraries built in
# place by cargo (not installed):
#
#   bash bindings/c/pkgconfig.sh <output dir> <libdir> [<version>]
#
# <libdir> is the cargo output directory holding libculvert_ffi.{a,so} (e.g.
# target/release); the header directory is bindings/c/include of this checkout;
# <version> defaults to the workspace version in Cargo.toml. Then:
#
#   cc app.c $(PKG_CONFIG_PATH=<output dir> pkg-config --cflags --libs culvert)
#
# (add `--static` to also get Libs.private when linking libculvert_ffi.a).
set -eu -o pipefail

[ $# -ge 2 ] || { echo "usage: $0 <output dir> <libdir> [<version>]" >&2; exit 2; }
out="$1"
libdir="$(cd "$2" && pwd)"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
version="${3:-$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)}"
[ -n "$version" ] || { echo "$0: no version found in $root/Cargo.toml" >&2; exit 1; }

mkdir -p "$out"
cat >"$out/culvert.pc" <<PC
prefix=$root
libdir=$libdir
includedir=\${prefix}/bindings/c/include

Name: culvert
Description: Lock-free shared-memory IPC for Linux (C API)
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lculvert_ffi
Libs.private: -lpthread -ldl -lm
PC
