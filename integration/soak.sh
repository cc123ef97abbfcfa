#!/usr/bin/env bash
# Bounded soak test of the release binary (issue 7): integration/soak.py under a hard time limit.
#
#   bash integration/soak.sh [SECONDS]    (default 300; 60 to 1200)
#
# Loopback only. Sustained load from examples/milter_load.rs (--mix): good, hostile and
# malformed mail, aborts, disconnects and malformed packets, with DNS fault windows from
# integration/dnsfault.py in front of NSD. Checks that every message sent got exactly one
# final reply, one log line per replied message and none for the others, no panic, and that
# open fds, alive tasks and RSS returned to their baseline. SOAK_RATE=N caps the load at N
# messages per second (default: as fast as spoofguard answers).
#
# Runs itself through sudo when not root. Installs its Debian packages when missing; builds
# target/release/spoofguard and the milter_load example unless SPOOFGUARD_BIN and
# MILTER_LOAD_BIN name other builds. The build comes first; from then on the run stops by
# itself within SECONDS + 30 s, and never after 20 minutes. Ends with "N passed, N failed"; exit 1 on any failure.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3

SECS=${1:-300}
if ! [[ $SECS =~ ^[0-9]+$ ]] || ((SECS < 60 || SECS > 1200)); then
    echo "usage: soak.sh [SECONDS], 60 to 1200"
    echo "0 passed, 1 failed"
    exit 1
fi
LIMIT=$((SECS + 30 > 1200 ? 1200 : SECS + 30))

# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"
reexec_as_root "$@"
# What soak.py (with opslib.py, gen.py, dnsfault.py) uses; the Python scripts also install
# their own modules (pydeps.py) when run alone.
need_cmd "$PY" python3
need_py dkim python3-dkim
need_py nacl python3-nacl
need_cmd nsd nsd
need_cmd dknewkey python3-dkim
install_needed || { echo "missing: ${MISSING[*]}"; echo "0 passed, 1 failed"; exit 1; }

build_release_and_load

echo "== integration/soak.py $SECS (stopped after $LIMIT s at the latest)"
mkdir -p "$ROOT/integration/work"
out=$ROOT/integration/work/soak-output.txt
(cd "$ROOT/integration" && timeout -k 10 "$LIMIT" "$PY" -u soak.py "$SECS") 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
last=$(tail -n 1 "$out")
if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    pass=${BASH_REMATCH[1]}
    fail=${BASH_REMATCH[2]}
else
    # Killed by the time limit or crashed before its summary.
    pass=0
    fail=1
    echo "FAIL soak.py ended without its summary (exit $rc)"
fi
((rc == 0)) || ((fail > 0)) || fail=$((fail + 1))
echo "$pass passed, $fail failed"
((fail == 0))
