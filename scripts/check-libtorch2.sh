#!/usr/bin/env bash
# Compiles the torch addon's sources (native/src/*.cc) against libtorch 2.x headers, beside the 1.13
# build that `npm run build:torch` makes from Debian 12's libtorch-dev. The c10d C++ API differs
# between the two (2.x split ProcessGroup into c10d::Backend objects; see native/src/distributed.cc),
# and GPU machines run PyTorch 2.x wheels: this catches a break there without a GPU or a 2.x install.
#
# The 2.x headers are Debian 13 ("trixie")'s libtorch-dev 2.6 and libgloo-dev, fetched as .deb files
# from deb.debian.org and unpacked (dpkg-deb -x) into a cache folder outside the repository
# (CODIEMB_CACHE, default ~/.cache/codiemb/libtorch2); nothing is installed and no apt source is added.
# Each .deb is found through trixie's Packages index and checked against the SHA256 listed there.
# Downloads: the index (~10 MB) and ~2.5 MB of packages, once.
#
# Compile only (g++ -fsyntax-only, C++17): linking needs trixie's libtorch2.6 shared objects, which
# need GLIBC_2.38 and GLIBCXX_3.4.32 (Debian 12 has glibc 2.36 and GLIBCXX_3.4.30), so nothing is
# linked or run here. Every header read must come from the 2.6 tree (checked from g++'s dependency list: a
# header missing there would otherwise be taken silently from the system's 1.13).
#
# CHECK_SYMBOLS=1 goes one step further without linking: it compiles the sources to objects and checks
# that every libtorch/c10/Gloo symbol they reference is exported by trixie's libtorch 2.6 and libgloo
# shared objects (libtorch2.6: a 58 MB download), i.e. that the declarations the headers promise
# exist in the 2.6 libraries with the same mangled names. Not in CI (size, ~4 min of compiling).
#
# CHECK_NCCL=1 also compiles distributed.cc's NCCL process group (CODIEMB_WITH_NCCL) against 2.6 and
# against the system's 1.13, with the CUDA 12.4, NCCL 2.22 and libcu++ headers of trixie's
# nvidia-cuda-dev (non-free, a 934 MB download: only its include/ is kept), libnccl-dev (contrib,
# 114 MB) and libcu++-dev. Too big for CI; run it by hand after changing the NCCL code.
#
# Usage: bash scripts/check-libtorch2.sh   (exit 1 on a compile error, 3 when a download fails)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache=${CODIEMB_CACHE:-$HOME/.cache/codiemb/libtorch2}
mirror=${DEBIAN_MIRROR:-https://deb.debian.org/debian}
suite=trixie
mkdir -p "$cache/debs"
T0=$(date +%s)
el() { echo "[+$(( $(date +%s) - T0 ))s] $*"; }

# The Packages index of one component (main, contrib, non-free), refreshed once a day.
index() {
  local file="$cache/$suite-$1-Packages"
  if [ ! -s "$file" ] || [ -n "$(find "$file" -mmin +1440)" ]; then
    curl -fsS --retry 3 "$mirror/dists/$suite/$1/binary-amd64/Packages.xz" | xz -dc > "$file.tmp" || { echo "downloading $suite/$1's package index from $mirror failed" >&2; exit 3; }
    mv "$file.tmp" "$file"
  fi
  echo "$file"
}

# Fetches package $2 of component $1 (checked against the index's SHA256); prints the .deb's path.
fetch() {
  local idx entry filename sha version deb
  idx=$(index "$1")
  entry=$(awk -v p="$2" '$0 == "Package: " p {on = 1} on && /^$/ {exit} on' "$idx")
  filename=$(sed -n 's/^Filename: //p' <<< "$entry")
  sha=$(sed -n 's/^SHA256: //p' <<< "$entry")
  version=$(sed -n 's/^Version: //p' <<< "$entry")
  [ -n "$filename" ] && [ -n "$sha" ] || { echo "$2 not found in $suite/$1's index" >&2; exit 3; }
  deb="$cache/debs/$(basename "$filename")"
  if [ ! -f "$deb" ] || ! sha256sum -c --status <<< "$sha  $deb"; then
    curl -fsS --retry 3 -o "$deb.tmp" "$mirror/$filename" || { echo "downloading $mirror/$filename failed" >&2; exit 3; }
    sha256sum -c --status <<< "$sha  $deb.tmp" || { echo "$filename: SHA256 differs from $suite's index" >&2; rm -f "$deb.tmp"; exit 3; }
    mv "$deb.tmp" "$deb"
  fi
  echo "$2 $version" >&2
  echo "$deb"
}

# Unpacks a .deb's /usr/include (or, with a third argument "all", everything) into $2 (once per .deb).
unpack() {
  local stamp
  stamp="$2/.$(basename "$1").unpacked"
  [ -f "$stamp" ] && return
  mkdir -p "$2"
  if [ "${3:-}" = all ]; then dpkg-deb -x "$1" "$2"; else dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards './usr/include/*'; fi
  touch "$stamp"
}

# The first package that package $2 of component $1 depends on whose name starts with $3.
depends_on() {
  awk -v p="$2" '$0 == "Package: " p {on = 1} on && /^$/ {exit} on && /^Depends:/' "$(index "$1")" | sed 's/^Depends://' | tr ',' '\n' | sed -n "s/^ *\($3[^ ]*\).*/\1/p" | head -1
}

t26="$cache/trixie-libtorch"
unpack "$(fetch main libtorch-dev)" "$t26"
unpack "$(fetch main libgloo-dev)" "$t26"
inc26="$t26/usr/include"
el "libtorch $(sed -n 's/^#define TORCH_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)/\2/p' "$inc26/torch/csrc/api/include/torch/version.h" | paste -sd.) headers in $inc26"

nodeinc=""
for d in "$(dirname "$(dirname "$(command -v node)")")/include/node" /usr/include/node "$HOME"/.cache/node-gyp/"$(node -p process.versions.node)"/include/node; do
  [ -f "$d/node_api.h" ] && { nodeinc=$d; break; }
done
[ -n "$nodeinc" ] || { echo "Node-API headers (node_api.h) not found" >&2; exit 2; }
addonapi=$(node -p "require('node-addon-api').include_dir" 2>/dev/null | tr -d '"') || addonapi=node_modules/node-addon-api
common=(-std=c++17 -Wall -Wno-unused-parameter -Wno-deprecated-declarations -Werror=return-type
  "-I$nodeinc" "-I$addonapi" -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -D_GLIBCXX_USE_CXX11_ABI=1)
failed=0

# compile LABEL TORCH_INCLUDE FILE EXTRA_FLAGS...: compiles FILE; with a non-system TORCH_INCLUDE, fails
# when any torch/ATen/c10/caffe2/gloo header came from /usr/include instead.
compile() {
  local label=$1 inc=$2 file=$3 deps start
  shift 3
  deps=$(mktemp)
  start=$(date +%s)
  if g++ -fsyntax-only "${common[@]}" "-I$inc" "-I$inc/torch/csrc/api/include" "$@" -MD -MF "$deps" "$file" -o /dev/null; then
    if [ "$inc" != /usr/include ] && tr ' \\' '\n\n' < "$deps" | grep -E '^/usr/(local/)?include/(torch|ATen|c10|caffe2|gloo)/' | head -3 | grep .; then
      echo "FAIL $label $file: the headers above came from the system, not $inc" >&2
      failed=1
    else
      el "ok   $label $file ($(( $(date +%s) - start )) s)"
    fi
  else
    echo "FAIL $label $file" >&2
    failed=1
  fi
  rm -f "$deps"
}

c10d=(-DCODIEMB_WITH_C10D=1 -DUSE_C10D_GLOO=1)
for f in native/src/*.cc; do compile "libtorch 2.6 (c10d + Gloo)" "$inc26" "$f" "${c10d[@]}"; done
# Without c10d (builds without Gloo): distributed.cc's fallback exports.
compile "libtorch 2.6 (no c10d)" "$inc26" native/src/distributed.cc

if [ "${CHECK_SYMBOLS:-0}" = 1 ] && [ "$failed" = 0 ]; then
  lib="$cache/trixie-libtorch-lib"
  unpack "$(fetch main "$(depends_on main libtorch-dev libtorch)")" "$lib" all
  unpack "$(fetch main "$(depends_on main libgloo-dev libgloo)")" "$lib" all
  work=$(mktemp -d)
  for f in native/src/*.cc; do
    g++ -c -O0 -fPIC "${common[@]}" "-I$inc26" "-I$inc26/torch/csrc/api/include" "${c10d[@]}" "$f" -o "$work/$(basename "$f" .cc).o" || { echo "FAIL compiling $f to an object" >&2; exit 1; }
  done
  nm -u --format=just-symbols "$work"/*.o | sort -u > "$work/undefined"
  nm --defined-only --format=just-symbols "$work"/*.o | sort -u > "$work/defined"
  # What the C/C++ runtime (this system's; older than trixie's, so a subset) and Node provide.
  for so in /lib/x86_64-linux-gnu/{libstdc++.so.6,libc.so.6,libm.so.6,libgcc_s.so.1}; do nm -D --defined-only --format=just-symbols "$so"; done | sed 's/@.*//' | sort -u > "$work/runtime"
  find "$lib" -name '*.so.*' -type f -exec nm -D --defined-only --format=just-symbols {} + | sed 's/@.*//' | sort -u > "$work/libtorch"
  comm -23 "$work/undefined" "$work/defined" | comm -23 - "$work/runtime" | grep -Ev '^(napi_|node_api_|_GLOBAL_OFFSET_TABLE_$|__dso_handle$|__tls_get_addr$|_ZTH)' > "$work/needed" || true
  comm -23 "$work/needed" "$work/libtorch" > "$work/missing" || true
  if [ -s "$work/missing" ]; then
    echo "FAIL symbols the objects need that trixie's libtorch 2.6 / libgloo do not export:" >&2
    c++filt < "$work/missing" | head -30 >&2
    failed=1
  else
    el "ok   all $(wc -l < "$work/needed") libtorch/c10/Gloo symbols the objects reference are exported by libtorch 2.6 ($(grep -c c10d "$work/needed") of them c10d's)"
  fi
  rm -rf "$work"
fi

if [ "${CHECK_NCCL:-0}" = 1 ]; then
  cu="$cache/trixie-cuda"
  unpack "$(fetch non-free nvidia-cuda-dev)" "$cu"
  unpack "$(fetch contrib libnccl-dev)" "$cu"
  unpack "$(fetch main libcu++-dev)" "$cu"
  # Debian's CPU-only libtorch-dev lacks the CUDA build's generated c10/cuda/impl/cuda_cmake_macros.h
  # (only Windows export macros); C10_CUDA_NO_CMAKE_CONFIGURE_FILE is c10's switch to do without it.
  nccl=("${c10d[@]}" -DUSE_C10D_NCCL=1 -DCODIEMB_WITH_NCCL=1 -DCODIEMB_WITH_CUDA=1 -DC10_CUDA_NO_CMAKE_CONFIGURE_FILE "-I$cu/usr/include")
  compile "libtorch 2.6 + CUDA 12.4 + NCCL (c10d + Gloo + NCCL)" "$inc26" native/src/distributed.cc "${nccl[@]}"
  # A build against PyTorch's wheels: NCCL without Gloo (the wheels ship no Gloo headers).
  compile "libtorch 2.6 + CUDA 12.4 + NCCL (c10d + NCCL, no Gloo)" "$inc26" native/src/distributed.cc -DCODIEMB_WITH_C10D=1 -DUSE_C10D_NCCL=1 -DCODIEMB_WITH_NCCL=1 -DCODIEMB_WITH_CUDA=1 -DC10_CUDA_NO_CMAKE_CONFIGURE_FILE "-I$cu/usr/include"
  # The CUDA caching allocator's statistics.
  compile "libtorch 2.6 + CUDA 12.4 (allocator statistics)" "$inc26" native/src/device-memory.cc -DCODIEMB_WITH_CUDA=1 -DC10_CUDA_NO_CMAKE_CONFIGURE_FILE "-I$cu/usr/include"
  if [ -f /usr/include/torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp ]; then
    compile "system libtorch + CUDA 12.4 + NCCL (c10d + Gloo + NCCL)" /usr/include native/src/distributed.cc "${nccl[@]}"
  fi
fi

[ "$failed" = 0 ] || { el "compile errors against libtorch 2.x (above)"; exit 1; }
el "native/src compiles against libtorch 2.6 (compile only: nothing linked or run)"
