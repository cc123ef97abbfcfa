#!/usr/bin/env bash
# Operations checks of the release binary (issue 8), after `cargo test`:
#   integration/metrics.py  live Prometheus endpoint (prometheus_client's parser), JSON log
#                           lines, SIGHUP reload counters; drives mail with examples/milter_load.rs
#   integration/interop.py  every Authentication-Results we emit parsed by authres (RFC 8601),
#                           delivered messages through integration/mime_check.py (Python email)
#
#   bash integration/interop.sh      (SPOOFGUARD_BIN / MILTER_LOAD_BIN to use other builds)
#
# Runs itself through sudo when not root. Installs its Debian packages when missing, builds
# target/release/spoofguard and the milter_load example when missing. Ends with "N passed, N failed"; exit 1 on any failure.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3

# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"
reexec_as_root "$@"
# What metrics.py and interop.py (and opslib.py, mime_check.py) use; each Python script also
# installs its own modules (pydeps.py) when run alone.
need_cmd "$PY" python3
need_py dkim python3-dkim
need_py nacl python3-nacl
need_py authres python3-authres
need_py prometheus_client python3-prometheus-client
need_cmd nsd nsd
need_cmd dknewkey python3-dkim
install_needed || { echo "missing: ${MISSING[*]}"; echo "0 passed, 1 failed"; exit 1; }

build_release_and_load

total_pass=0
total_fail=0
for script in metrics.py interop.py; do
    echo "== integration/$script"
    out=$(cd "$ROOT/integration" && "$PY" "$script" 2>&1)
    rc=$?
    echo "$out"
    last=$(tail -n 1 <<<"$out")
    if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        total_pass=$((total_pass + BASH_REMATCH[1]))
        total_fail=$((total_fail + BASH_REMATCH[2]))
    else
        total_fail=$((total_fail + 1))
    fi
    ((rc == 0)) || [[ $total_fail -gt 0 ]] || total_fail=$((total_fail + 1))
done
echo "$total_pass passed, $total_fail failed"
((total_fail == 0))
