#!/usr/bin/env bash
# Coverage-guided fuzzing of the decoders and validators (libFuzzer via
# cargo-fuzz, on the stable toolchain with RUSTC_BOOTSTRAP=1).
#
#   scripts/fuzz.sh              every target, 600 s each
#   scripts/fuzz.sh 60 replicas  one target, 60 s
#
# The corpus lives in fuzz/corpus/<target> and is kept in the repo (run
# `cargo fuzz cmin` before committing a grown one). A crash leaves its input
# in fuzz/artifacts/<target>/; turn it into a regression test (see
# docs/reliability.md, "Fuzzing") before fixing it. Prints, per target, the
# executions, their rate, and libFuzzer's coverage counters at the end.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(entry_decode ingest replicas)
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log=$(mktemp)
    if ! cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" \
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
