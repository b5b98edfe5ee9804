#!/usr/bin/env bash
# Coverage-guided fuzzing of the decoders and validators (libFuzzer via
# cargo-fuzz, on the stable toolchain with RUSTC_BOOTSTRAP=1).
#
#   scripts/fuzz.sh              every target, 600 s each, one after another
#   scripts/fuzz.sh 60 replicas  one target, 60 s
#
# Built without a sanitizer (`-s none`): the code under test is safe Rust,
# where AddressSanitizer finds nothing the Rust checks do not, and the
# targets link iroh and wasmtime, whose ASan build takes too long on a
# 2-core machine. Overflow checks are on (fuzz/Cargo.toml), so length
# arithmetic that wraps is a crash here.
#
# Before fuzzing, each target writes its seeds (real frames, tokens, lines,
# descriptors, plugins made by the product's own encoders; see
# fuzz/src/lib.rs) into fuzz/corpus/<target>. The corpus is kept in the
# repo (run `cargo fuzz cmin -s none <target>` before committing a grown
# one). A crash leaves its input in fuzz/artifacts/<target>/; turn it into
# a regression test in the product crate (see docs/reliability.md,
# "Fuzzing") before fixing it. Prints, per target, the executions, their
# rate, and libFuzzer's coverage counters at the end.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(entry_decode ingest replicas net_frames invite api_frame irc_line cli_descriptor plugin_blob)
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O -s none
bin="target/$(rustc -vV | sed -n 's/^host: //p')/release"
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    LATTICE_FUZZ_SEEDS="corpus/$t" "$bin/$t" -runs=0 >/dev/null 2>&1
    log=$(mktemp)
    if ! cargo fuzz run -O -s none "$t" "corpus/$t" -- -max_total_time="$secs" \
        -print_final_stats=1 >"$log" 2>&1; then
        status=1
        echo "$t: FAILED (input in fuzz/artifacts/$t/)"
        grep -E "panicked|SUMMARY|ERROR" "$log" | head -5
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    echo "$t: ${secs} s, ${execs:-?} execs (${rate:-?}/s), ${cov:-cov: ?}, corpus $(ls "corpus/$t" | wc -l) inputs"
    rm -f "$log"
done
exit $status
