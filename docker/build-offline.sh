#!/usr/bin/env bash
# Build the switchboard image without pulling any image: compile a static binary on this
# machine, then put it in an image FROM scratch (docker/Dockerfile, target `prebuilt`).
#
#   docker/build-offline.sh [TAG]          default TAG: switchboard:latest
#   docker/build-offline.sh TAG arm64      the same for 64-bit ARM, from this machine
#
# Static with musl when it is at hand (the Rust target x86_64-unknown-linux-musl, which
# this script adds with rustup, and the C compiler wrapper musl-gcc, from Debian's
# musl-tools), else static with glibc (-C target-feature=+crt-static).
#
# arm64 is cross-compiled: the Rust target aarch64-unknown-linux-musl (added with rustup;
# its standard library brings musl's C library and start files) and Debian's cross C
# compiler gcc-aarch64-linux-gnu, which compiles ring's C and assembly and links. The image
# is FROM scratch, so building it for arm64 runs nothing: no emulation is needed for that.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:-switchboard:latest}
arch=${2:-$(uname -m)}
[ "$arch" = arm64 ] && arch=aarch64
musl=$arch-unknown-linux-musl
platform=""

if [ "$arch" != "$(uname -m)" ]; then
    [ "$arch" = aarch64 ] || { echo "build-offline: no cross build for $arch (only arm64)" >&2; exit 2; }
    command -v aarch64-linux-gnu-gcc >/dev/null || {
        echo "build-offline: arm64 needs the cross compiler: apt-get install gcc-aarch64-linux-gnu" >&2
        exit 2
    }
    rustup target list --installed | grep -qx "$musl" || rustup target add "$musl"
    export CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
    target=$musl
    platform=arm64
elif command -v musl-gcc >/dev/null &&
    { rustup target list --installed | grep -qx "$musl" || rustup target add "$musl"; }; then
    target=$musl
else
    echo "build-offline: no musl toolchain (apt-get install musl-tools; rustup target add $musl);" \
        "linking glibc statically instead" >&2
    target=$arch-unknown-linux-gnu
    export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"
fi

echo "build-offline: compiling a static binary for $target" >&2
CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked --quiet --target "$target" --bin switchboard
binary=target/$target/release/switchboard

# A static binary has no program interpreter (the dynamic loader) to ask for.
if LC_ALL=C readelf --program-headers "$binary" | grep -q INTERP; then
    echo "build-offline: $binary is dynamically linked; a scratch image cannot run it" >&2
    exit 1
fi

# The build context: only what the image holds.
context=target/docker-context
rm -rf "$context"
mkdir -p "$context/volumes/certs" "$context/volumes/mail"
cp "$binary" "$context/switchboard"
cp docker/Dockerfile "$context/Dockerfile"
if [ -z "$platform" ]; then
    docker build --quiet --target prebuilt --tag "$tag" "$context" >/dev/null
else
    # Nothing runs while an image FROM scratch is built, so the arm64 binary goes into it as
    # any file would; the builder (without buildx) labels the image with this machine's
    # architecture, which docker/set-platform.py then corrects.
    docker build --quiet --target prebuilt --tag "$tag-unlabelled" "$context" >/dev/null
    docker/set-platform.py "$tag-unlabelled" "$platform" "$tag"
    docker rmi "$tag-unlabelled" >/dev/null
fi
size=$(docker image inspect --format '{{.Size}}' "$tag")
echo "build-offline: built $tag ($((size / 1024)) KiB, $(docker image inspect --format '{{.Architecture}}' "$tag"))" >&2
