#!/bin/sh
# Collects node, the shared libraries it links (found by its own dynamic loader, as ldd does), the
# loader itself as lib/ld.so, and the CA bundle, under OUT/kiln. node is started through that loader,
# so it needs nothing outside /kiln.
# The util-linux tools (setpriv, unshare, flock) go to OUT/kiln/bin with their libraries in both
# places: OUT/kiln/lib, for in-place isolation, which starts them through kiln's loader once "/" may
# have been replaced; and their usual paths under OUT, for chroot isolation, which starts them directly.
# Usage: collect-runtime.sh NODE_BIN CA_BUNDLE OUT
set -eu
node_bin=$1
ca_bundle=$2
root=$3
out=$root/kiln

mkdir -p "$out/bin" "$out/lib" "$out/ssl/certs" "$out/.docker"
cp -L "$node_bin" "$out/bin/node"
if [ ! -f "$ca_bundle" ]; then
  echo "collect-runtime: no CA bundle at $ca_bundle (set the CA_BUNDLE build argument)" >&2
  exit 1
fi
cp -L "$ca_bundle" "$out/ssl/certs/ca-certificates.crt"

loader=""
for candidate in /lib64/ld-linux-*.so.* /lib/ld-linux-*.so.* /lib/ld-musl-*.so.*; do
  if [ -e "$candidate" ]; then loader=$candidate; break; fi
done
if [ -z "$loader" ]; then
  echo "collect-runtime: no dynamic loader under /lib64 or /lib" >&2
  exit 1
fi
cp -L "$loader" "$out/lib/ld.so"

# Lines look like `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`.
"$loader" --list "$node_bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' > /tmp/node-libs
while read -r library; do
  cp -L "$library" "$out/lib/"
done < /tmp/node-libs

# The tools, where the image has them (chroot isolation says which one is missing when it needs it).
for tool in setpriv unshare flock; do
  # Searched by hand: a busybox shell's `command -v` names its own applet rather than a file.
  found=""
  for dir in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
    if [ -f "$dir/$tool" ] && [ ! -L "$dir/$tool" ]; then found=$dir/$tool; break; fi
  done
  if [ -z "$found" ]; then continue; fi
  cp -L "$found" "$out/bin/$tool"
  "$loader" --list "$found" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' >> /tmp/tool-libs || true
done
mkdir -p "$root$(dirname "$loader")"
cp -L "$loader" "$root$loader"
if [ -f /tmp/tool-libs ]; then
  sort -u /tmp/tool-libs | while read -r library; do
    mkdir -p "$root$(dirname "$library")"
    cp -L "$library" "$root$library"
    cp -L "$library" "$out/lib/"
  done
  rm -f /tmp/tool-libs
fi

# glibc before 2.34 loads name resolution from NSS modules at run time: keep them beside libc.
libc_dir=$(dirname "$(grep '/libc\.so' /tmp/node-libs | head -n 1)")
for module in libnss_files.so.2 libnss_dns.so.2 libresolv.so.2; do
  if [ -e "$libc_dir/$module" ]; then cp -L "$libc_dir/$module" "$out/lib/"; fi
done
rm -f /tmp/node-libs
