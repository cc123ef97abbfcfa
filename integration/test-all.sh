#!/usr/bin/env bash
# Runs every test: the hermetic `cargo test` suite, then the black-box runs of the release
# binary (integration/*.sh: they install their Debian packages, so this needs root; run as a
# user with sudo, it runs itself again through sudo).
# This is the test command README.md gives users, and what .ci/run calls.
set -euo pipefail
# shellcheck source=integration/lib.sh
source "$(dirname "$0")/lib.sh"
reexec_as_root "$@"
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust 1.89 or newer (https://rustup.rs)" >&2
    exit 1
fi

# What this script runs itself (each script below installs its own); all before cargo test, so
# a missing package shows at once.
need_cmd /usr/bin/python3 python3
need_py authres python3-authres
install_needed || { echo "missing: ${MISSING[*]}"; echo "0 passed, 1 failed"; exit 1; }

echo "== cargo test"
cargo test --locked

# Each script below installs what it needs, prints its own "N passed, N failed" line and exits
# non-zero on any failure; they reuse the release binary run.sh builds.
echo "== integration/run.sh (miltertest, then Postfix + swaks, DNS from NSD)"
bash integration/run.sh
echo "== integration/mime_check.py (messages Postfix delivered parse as MIME)"
/usr/bin/python3 integration/mime_check.py integration/work/pf/sink
echo "== integration/package.sh (.deb build, install, config-check, purge; systemd unit)"
bash integration/package.sh
echo "== integration/interop.sh (metrics endpoint, JSON logs, RFC 8601 parsing by authres)"
bash integration/interop.sh
# Last: two minutes of mixed and hostile load with DNS faults (docs/security.md, "Soak test").
echo "== integration/soak.sh 120 (one final reply per message; fds, tasks and RSS back to baseline)"
bash integration/soak.sh 120
