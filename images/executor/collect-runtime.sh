#!/bin/sh
# Collects node, the shared libraries it links (found by its own dynamic loader, as ldd does), the
# loader itself as lib/ld.so, and the CA bundle, under OUT/kiln. node is started through that loader,
# so it needs nothing outside /kiln.
# The util-linux tools (setpriv, unshare, flock) and attr's getfattr and setfattr (extended
# attributes, file capabilities among them, read into layers and set when unpacking) go to OUT/kiln/bin with their libraries in both
# places: OUT/kiln/lib, for in-place isolation, which starts them through kiln's loader once "/" may
# have been replaced; and their usual paths under OUT, for chroot isolation, which starts them directly.
# git, for git build contexts, goes to OUT/kiln/bin too, with the helper it runs for http(s) remotes
# in OUT/kiln/libexec/git-core (the Dockerfile points GIT_EXEC_PATH there) and an empty template
# directory; its libraries go to both places like the tools'.
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

# Searched by hand: a busybox shell's `command -v` names its own applet rather than a file.
find_program() {
  for dir in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
    if [ -f "$dir/$1" ] && [ ! -L "$dir/$1" ]; then echo "$dir/$1"; return; fi
  done
}
# Lists the program's libraries for the copy below.
add_libraries() {
  "$loader" --list "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' >> /tmp/tool-libs || true
}

# The tools, where the image has them (chroot isolation says which one is missing when it needs it).
for tool in setpriv unshare flock getfattr setfattr; do
  found=$(find_program "$tool")
  if [ -z "$found" ]; then continue; fi
  cp -L "$found" "$out/bin/$tool"
  add_libraries "$found"
done

# git, where the image has it (a git context then says git is missing). The commands kiln runs are
# built into the git binary, and remotes over http(s) run one helper from the exec path; ssh
# remotes and `git submodule` where it is a shell script (bookworm's git 2.39) need an ssh client or
# a shell, which the image does not have.
git=$(find_program git)
if [ -n "$git" ]; then
  helper=$("$git" --exec-path)/git-remote-http
  if [ ! -f "$helper" ]; then
    echo "collect-runtime: $git has no $helper, which it needs for http(s) remotes" >&2
    exit 1
  fi
  mkdir -p "$out/libexec/git-core" "$out/share/git-core/templates"
  cp -L "$git" "$out/bin/git"
  cp -L "$helper" "$out/libexec/git-core/git-remote-http"
  ln -s git-remote-http "$out/libexec/git-core/git-remote-https"
  # git starts its own subcommands (fetch-pack, index-pack) from the exec path first.
  ln -s ../../bin/git "$out/libexec/git-core/git"
  add_libraries "$git"
  add_libraries "$helper"
fi

# glibc before 2.34 loads name resolution from NSS modules at run time: keep them beside libc, in
# both places (node resolves names from /kiln/lib, git's http helper from the usual path).
libc_dir=$(dirname "$(grep '/libc\.so' /tmp/node-libs | head -n 1)")
for module in libnss_files.so.2 libnss_dns.so.2 libresolv.so.2; do
  if [ -e "$libc_dir/$module" ]; then echo "$libc_dir/$module" >> /tmp/tool-libs; fi
done
rm -f /tmp/node-libs

# Each library once: the usual path and /kiln/lib are hard links to one file (the layer keeps them).
mkdir -p "$root$(dirname "$loader")"
ln -f "$out/lib/ld.so" "$root$loader"
if [ -f /tmp/tool-libs ]; then
  sort -u /tmp/tool-libs | while read -r library; do
    mkdir -p "$root$(dirname "$library")"
    cp -L "$library" "$root$library"
    ln -f "$root$library" "$out/lib/$(basename "$library")"
  done
  rm -f /tmp/tool-libs
fi
