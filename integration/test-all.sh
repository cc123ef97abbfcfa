#!/usr/bin/env bash
# Runs every test: the hermetic `cargo test` suite, then the black-box integration run of the
# release binary (integration/run.sh: installs its Debian packages, needs root).
# This is the test command README.md gives users, and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust 1.89 or newer (https://rustup.rs)" >&2
    exit 1
fi

echo "== cargo test"
cargo test --locked

if [ -f integration/run.sh ]; then
    echo "== integration/run.sh"
    bash integration/run.sh
fi
