#!/usr/bin/env bash
# Build the switchboard image without pulling any image: compile a static binary on this
# machine, then put it in an image FROM scratch (docker/Dockerfile, target `prebuilt`).
#
#   docker/build-offline.sh [TAG]          default TAG: switchboard:latest
#
# Static with musl when it is at hand (the Rust target x86_64-unknown-linux-musl, which
# this script adds with rustup, and the C compiler wrapper musl-gcc, from Debian's
# musl-tools), else static with glibc (-C target-feature=+crt-static).
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:-switchboard:latest}
arch=$(uname -m)
musl=$arch-unknown-linux-musl

if command -v musl-gcc >/dev/null &&
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
docker build --quiet --target prebuilt --tag "$tag" "$context" >/dev/null
size=$(docker image inspect --format '{{.Size}}' "$tag")
echo "build-offline: built $tag ($((size / 1024)) KiB)" >&2
