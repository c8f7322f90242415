#!/usr/bin/env bash
# Fuzz switchboard's parsers with cargo-fuzz (libFuzzer), each target for SECONDS.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      default: 60 seconds, every target
#
# Each target starts from fuzz/seeds/<target>/ and grows fuzz/corpus/<target>/ (kept
# between runs, not in git). An input that fails is saved in fuzz/artifacts/<target>/ and
# the script exits non-zero. After fixing the bug, copy the input into
# fuzz/regressions/<target>/ under a name that says what it found: the replay test in
# crates/fuzzing runs it from then on, in `cargo test --workspace`.
#
# Runs on stable Rust: no sanitizer (-s none; the code has no unsafe), with debug
# assertions and overflow checks on.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-60}
shift || true
if ! command -v cargo-fuzz >/dev/null; then
    echo "fuzz: installing cargo-fuzz from crates.io" >&2
    cargo install --locked cargo-fuzz
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

flags=(--sanitizer none --debug-assertions)
cargo fuzz build "${flags[@]}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    if cargo fuzz run "${flags[@]}" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1; then
        # libFuzzer's last status line: runs, coverage, corpus size.
        printf 'fuzz: %-16s %s\n' "$target" "$(grep -E '^#[0-9]+' "$log" | tail -n 1)" >&2
    else
        tail -n 40 "$log" >&2
        echo "fuzz: $target FAILED; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
echo "fuzz: every target ran ${seconds}s without a failure" >&2
