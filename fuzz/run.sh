#!/usr/bin/env bash
# Bounded fuzz runs of every target: `bash fuzz/run.sh [SECONDS_PER_TARGET]` (default 30).
# Installs cargo-fuzz if missing; builds with the stable toolchain via RUSTC_BOOTSTRAP=1 (the
# toolchain here is stable only). Corpora are seeded from the test fixtures (fuzz/seed.py);
# crashes land in fuzz/artifacts/<target>/ and make the script fail.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
python3 fuzz/seed.py
targets=(config domain message milter)
cargo fuzz build -O 2>&1 | tail -n 3
failed=0
for t in "${targets[@]}"; do
    mkdir -p "fuzz/artifacts/$t"
    echo "== fuzz $t for ${secs}s"
    if ! cargo fuzz run -O "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -timeout=10 \
            -rss_limit_mb=2048 -print_final_stats=1 >"fuzz/artifacts/$t.log" 2>&1; then
        echo "fuzz $t: FAILED (see fuzz/artifacts/$t.log and fuzz/artifacts/$t/)"
        tail -n 30 "fuzz/artifacts/$t.log"
        failed=$((failed + 1))
    else
        grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "fuzz/artifacts/$t.log" | tr '\n' ' '
        echo
    fi
done
echo "fuzz targets: $(( ${#targets[@]} - failed )) clean, $failed crashed"
[ "$failed" -eq 0 ]
