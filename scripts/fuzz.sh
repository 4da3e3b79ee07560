#!/usr/bin/env bash
# Fuzzes berth's parsers with cargo-fuzz (libFuzzer + AddressSanitizer): every target in
# fuzz/fuzz_targets runs for a bounded time, one after the other, and the script exits
# non-zero if any of them found a crash (panic, failed property, sanitizer report, timeout
# or out-of-memory), printing where the crashing input was saved. Before fuzzing, the
# saved crashers in fuzz/regressions/<target>/ are replayed: one that still crashes also
# fails the run (a fixed bug stays fixed).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default: 60 s, all targets
#
# Needs rustup with a nightly toolchain (sanitizer flags are nightly-only), a C/C++
# compiler (ring, zstd, xz, sqlite and libFuzzer itself are C/C++), and installs
# cargo-fuzz with `cargo install` if it is missing. Run as root for tar_apply to cover
# overlay whiteouts and xattrs. Corpora grow in fuzz/corpus/ (kept between runs, not
# committed); crashers land in fuzz/artifacts/<target>/, logs in fuzz/artifacts/logs/.
# See fuzz/README.md for reproducing and minimizing a crash.
set -euo pipefail

secs="${1:-60}"
[[ "$secs" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2; }
shift || true

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz="$root/fuzz"
cd "$root"

if ! command -v rustup >/dev/null; then
    echo "fuzz.sh: rustup is required (https://rustup.rs), with a nightly toolchain" >&2
    exit 2
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz needs a nightly Rust toolchain, and none is installed." >&2
    echo "         Install it with: rustup toolchain install nightly" >&2
    exit 2
fi
for tool in cc c++; do
    if ! command -v "$tool" >/dev/null; then
        echo "fuzz.sh: no '$tool' found: install a C/C++ toolchain (Debian: apt-get install build-essential)" >&2
        exit 2
    fi
done
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz (a few minutes, once)"
    cargo install cargo-fuzz --locked
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "fuzz.sh: note: not root, so tar_apply cannot create whiteouts or trusted xattrs and covers less"
fi

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir "$fuzz")
fi

# Build everything first, so a compile error is not mistaken for a crash and the time
# budget is spent fuzzing.
echo "== building ${#targets[@]} fuzz targets"
for t in "${targets[@]}"; do
    cargo +nightly fuzz build --fuzz-dir "$fuzz" "$t"
done

# tar_apply, registry_http and buildkit_fsutil keep a sandbox under $TMPDIR; on tmpfs they run faster.
if [[ -z "${TMPDIR:-}" && -d /dev/shm && -w /dev/shm ]]; then
    export TMPDIR=/dev/shm
fi

# libFuzzer options. -timeout: one input running this long is a bug (a hang); rss limit:
# a runaway allocation is one too. -print_final_stats for the summary below.
opts=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
mkdir -p "$fuzz/artifacts/logs"
scratch="$(mktemp -d)"   # where replayed regressions' crash copies go
trap 'rm -rf "$scratch"' EXIT
failed=()
summary=()

for t in "${targets[@]}"; do
    # Known crashers first: each is run once, outside the corpus (a crashing corpus
    # entry would stop the fuzzer before it starts).
    reg="$fuzz/regressions/$t"
    if [[ -d "$reg" ]] && compgen -G "$reg/*" >/dev/null; then
        for input in "$reg"/*; do
            [[ -f "$input" && "$input" != *.md ]] || continue
            if cargo +nightly fuzz run --fuzz-dir "$fuzz" "$t" "$input" -- -runs=1 -artifact_prefix="$scratch/" \
                >"$fuzz/artifacts/logs/$t.regression.log" 2>&1; then
                echo "== $t: regression input $(basename "$input") passes (fixed)"
            else
                echo "== $t: regression input $input STILL CRASHES (log: fuzz/artifacts/logs/$t.regression.log)"
                failed+=("$t (regression $(basename "$input"))")
            fi
        done
    fi

    corpus="$fuzz/corpus/$t"
    mkdir -p "$corpus" "$fuzz/artifacts/$t"
    seeds=()
    [[ -d "$fuzz/seeds/$t" ]] && seeds+=("$fuzz/seeds/$t")
    # The Dockerfile parser's golden cases are good seeds (libFuzzer reads dirs recursively).
    [[ "$t" == dockerfile_parse && -d crates/berth-dockerfile/tests/testdata ]] &&
        seeds+=("$root/crates/berth-dockerfile/tests/testdata")

    run_opts=("${opts[@]}")
    dict="$fuzz/dicts/$t.dict"
    [[ -f "$dict" ]] || dict="$fuzz/dicts/${t%%_*}.dict"
    [[ -f "$dict" ]] && run_opts+=(-dict="$dict")

    log="$fuzz/artifacts/logs/$t.log"
    marker="$(mktemp)"
    echo "== $t: fuzzing for ${secs}s (log: ${log#"$root"/})"
    rc=0
    cargo +nightly fuzz run --fuzz-dir "$fuzz" "$t" "$corpus" "${seeds[@]}" -- "${run_opts[@]}" >"$log" 2>&1 || rc=$?

    # "cov: N ft: N corp: N/Nb" from the last status line; runs and exec/s from the final stats.
    stats="$(grep -E '^#[0-9]+[[:space:]].*cov: ' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]+' || true)"
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    eps="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    stats="${stats:-no coverage line}  runs: ${runs:-?}  exec/s: ${eps:-?}"
    new=$(find "$fuzz/artifacts/$t" -type f -newer "$marker" 2>/dev/null || true)
    rm -f "$marker"
    if [[ $rc -ne 0 || -n "$new" ]]; then
        echo "== $t: CRASH (exit $rc)"
        grep -E -m1 -A3 "panicked at|ERROR: (AddressSanitizer|libFuzzer)|SUMMARY:" "$log" | sed 's/^/   /' || true
        for a in $new; do echo "   input saved to ${a#"$root"/}"; done
        [[ -n "$new" ]] || echo "   (no artifact written: see the log)"
        echo "   reproduce: cargo +nightly fuzz run --fuzz-dir fuzz $t <input>"
        failed+=("$t")
        summary+=("$t: CRASH  ${stats}")
    else
        summary+=("$t: ok     ${stats}")
    fi
done

echo
echo "== summary (${secs}s per target)"
printf '   %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "== FAILED: ${failed[*]}"
    echo "   Save each crashing input under fuzz/regressions/<target>/ and add a regression test."
    exit 1
fi
echo "== no crashes"
