#!/usr/bin/env bash
# switchboard for 64-bit ARM, built and tried on an x86_64 machine: a static
# aarch64-unknown-linux-musl binary (cross-compiled, docker/build-offline.sh), run under
# Debian's qemu-user-static (--version, then serve and answer /healthz), and the arm64
# image FROM scratch, tagged switchboard:arm64.
#
#   docker/arm64.sh            needs gcc-aarch64-linux-gnu, qemu-user-static, curl, python3,
#                              readelf (binutils) and a Docker engine for the image
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'arm64: %s\n' "$*" >&2; }
fail() {
    printf 'arm64: FAILED: %s\n' "$*" >&2
    exit 1
}
qemu=qemu-aarch64-static
command -v "$qemu" >/dev/null || fail "no $qemu: apt-get install qemu-user-static"
scratch=$(mktemp -d)
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT

tag=switchboard:arm64
say "cross-compiling and building $tag"
docker/build-offline.sh "$tag" arm64
binary=target/aarch64-unknown-linux-musl/release/switchboard
machine=$(LC_ALL=C readelf --file-header "$binary" | sed -n 's/^ *Machine: *//p')
[ "$machine" = AArch64 ] || fail "$binary is for '$machine', not AArch64"
say "$binary: $machine, static, $(($(stat -c %s "$binary") / 1024)) KiB"

version=$("$qemu" "$binary" --version)
[[ "$version" == "switchboard "* ]] || fail "--version under qemu said: $version"
say "under qemu: $version"

# Serve one HTTP port (the kernel's choice) under qemu and ask it for /healthz.
printf '[[port]]\nport = 0\nservice = "http"\nbind = ["127.0.0.1"]\n' >"$scratch/arm64.toml"
"$qemu" "$binary" serve --config "$scratch/arm64.toml" --certs "$scratch/certs" \
    --log-format json 2>"$scratch/log" &
server=$!
addr=""
for _ in $(seq 300); do
    # The readiness signal is the "ready" line; the listening line before it has the port.
    if grep -q '"ready":true' "$scratch/log"; then
        addr=$(python3 -c 'import json,sys
for line in open(sys.argv[1]):
    fields = json.loads(line).get("fields", {})
    if fields.get("service") == "http" and "addr" in fields:
        print(fields["addr"]); break' "$scratch/log")
        break
    fi
    kill -0 "$server" 2>/dev/null || fail "serve under qemu exited: $(cat "$scratch/log")"
    sleep 0.1 # waiting on the server's own readiness line, bounded at 30 s
done
[ -n "$addr" ] || fail "serve under qemu was not ready within 30 s: $(cat "$scratch/log")"
answer=$(curl --silent --show-error --fail --max-time 10 "http://$addr/healthz")
[ "$answer" = ok ] || fail "GET /healthz under qemu answered: $answer"
say "under qemu: serving on $addr, GET /healthz answered $answer"
kill "$server"
wait "$server" 2>/dev/null || true
server=""

arch=$(docker image inspect --format '{{.Architecture}}' "$tag")
[ "$arch" = arm64 ] || fail "$tag is for $arch"
size=$(docker image inspect --format '{{.Size}}' "$tag")
[ "$size" -lt 20000000 ] || fail "$tag is $size bytes; it must stay under 20 MB"
say "image $tag: $arch, $((size / 1024)) KiB"
say "passed"
