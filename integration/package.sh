#!/usr/bin/env bash
# The Debian package and the systemd unit, end to end (issue 8). Needs root (it runs itself
# through sudo otherwise) and dpkg; installs systemd and man-db when missing.
#
#   bash integration/package.sh
#
# 1. systemd-analyze verify on packaging/spoofguard.service (offline; no running systemd needed)
# 2. cargo build --release + cargo deb --no-build (reuses target/release; installs cargo-deb if missing)
# 3. dpkg -i, then: files in place, milter.toml is a conffile, user spoofguard exists,
#    `spoofguard config-check` accepts the installed /etc/spoofguard/milter.toml, both man
#    pages render with `man -l` without warnings, systemd-analyze verify on the installed unit,
#    and the installed binary serves as user spoofguard
# 4. dpkg --purge, then: every installed file, the conffile and the user are gone
# Ends with "N passed, N failed"; exit status 1 on any failure.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$ROOT/integration/work/ops-package
PY=/usr/bin/python3
# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"
reexec_as_root "$@"
passed=0
failed=0
PIDS=()

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1${2:+: $2}"; failed=$((failed + 1)); }
check() { # name command...
    local name=$1
    shift
    if "$@" >"$WORK/last.out" 2>&1; then pass "$name"; else fail "$name" "$(tail -n 5 "$WORK/last.out")"; fi
}
finish() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    echo "$passed passed, $failed failed"
    if ((failed > 0)); then exit 1; fi
    exit 0
}
trap finish EXIT

rm -rf "$WORK"
mkdir -p "$WORK"
export PATH="$PATH:/usr/sbin:/sbin:${CARGO_HOME:-$HOME/.cargo}/bin"
need_cmd "$PY" python3
need_cmd systemd-analyze systemd
need_cmd man man-db
need_cmd dpkg dpkg
need_cmd dpkg-deb dpkg
need_cmd runuser util-linux
install_needed || { fail "tools" "missing: ${MISSING[*]}"; exit; }
if ! command -v cargo-deb >/dev/null; then
    echo "installing cargo-deb (cargo install cargo-deb --locked)"
    cargo install cargo-deb --locked --quiet || { fail "cargo-deb" "cargo install failed"; exit; }
fi

# ---------------------------------------------------------------- 1. unit, before install
cd "$ROOT" || exit
sed "s#/usr/sbin/spoofguard#$ROOT/target/release/spoofguard#g" packaging/spoofguard.service \
    >"$WORK/spoofguard.service"
# man: pages are checked after installation; the binary path must exist for verify.
if [[ ! -x target/release/spoofguard ]]; then
    cargo build --release --locked --quiet --bin spoofguard || { fail "cargo build"; exit; }
fi
check "unit_verifies_offline" systemd-analyze verify --man=no "$WORK/spoofguard.service"
# shellcheck disable=SC2016 # the literal $MAINPID of the unit file
for key in 'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' 'NoNewPrivileges=yes' \
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' 'MemoryDenyWriteExecute=yes' \
    'SystemCallFilter=@system-service' 'CapabilityBoundingSet=' 'RuntimeDirectory=spoofguard' \
    'ExecReload=/bin/kill -HUP $MAINPID' \
    'ExecStartPre=/usr/sbin/spoofguard config-check --config /etc/spoofguard/milter.toml'; do
    check "unit_has ${key%%=*}" grep -qxF "$key" packaging/spoofguard.service
done

# ---------------------------------------------------------------- 2. build the package
# The same build as integration/run.sh's `cargo build --release` (no-op when it is current),
# packaged as is: cargo deb's own build can differ in features and rebuild for minutes.
start=$(date +%s)
cargo build --release --locked --quiet --bin spoofguard || { fail "cargo build --release"; exit; }
if ! cargo deb --no-build >"$WORK/cargo-deb.log" 2>&1; then
    fail "cargo_deb" "$(tail -n 20 "$WORK/cargo-deb.log")"
    exit
fi
DEB=$(tail -n 1 "$WORK/cargo-deb.log")
[[ -f $DEB ]] || DEB=$(find target/debian -name 'spoofguard_*.deb' -printf '%T@ %p\n' | sort -rn | head -n 1 | cut -d' ' -f2)
pass "cargo_deb ($(($(date +%s) - start)) s, $DEB)"
dpkg-deb -c "$DEB" >"$WORK/contents.txt"

# ---------------------------------------------------------------- 3. install
if dpkg -s spoofguard >/dev/null 2>&1; then dpkg --purge spoofguard >/dev/null 2>&1; fi
check "dpkg_install" dpkg -i "$DEB"
for f in /usr/sbin/spoofguard /etc/spoofguard/milter.toml /lib/systemd/system/spoofguard.service \
    /usr/share/man/man8/spoofguard.8.gz /usr/share/man/man5/milter.toml.5.gz \
    /usr/share/doc/spoofguard/operations.md; do
    check "installed $f" test -f "$f"
done
check "milter.toml_is_conffile" sh -c "dpkg-query -W -f='\${Conffiles}' spoofguard | grep -q ' /etc/spoofguard/milter.toml '"
check "user_spoofguard_exists" getent passwd spoofguard
check "installed_config_check" /usr/sbin/spoofguard config-check --config /etc/spoofguard/milter.toml
check "installed_config_check_default_path" /usr/sbin/spoofguard config-check
for page in /usr/share/man/man8/spoofguard.8.gz /usr/share/man/man5/milter.toml.5.gz; do
    MANWIDTH=80 man --warnings -l "$page" >"$WORK/man.out" 2>"$WORK/man.err"
    if [[ -s $WORK/man.out && ! -s $WORK/man.err ]] && grep -q "SEE ALSO" "$WORK/man.out"; then
        pass "man_renders $(basename "$page")"
    else
        fail "man_renders $(basename "$page")" "$(head -n 5 "$WORK/man.err")"
    fi
done
check "man_spoofguard_8_has_subcommands" sh -c "MANWIDTH=80 man -l /usr/share/man/man8/spoofguard.8.gz | grep -q 'config-check'"
check "man_milter_toml_5_has_keys" sh -c "MANWIDTH=80 man -l /usr/share/man/man5/milter.toml.5.gz | grep -q 'metrics.listen'"
check "installed_unit_verifies" systemd-analyze verify /lib/systemd/system/spoofguard.service

# The installed binary serves as the unprivileged user, as the unit runs it.
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
runuser -u spoofguard -- /usr/sbin/spoofguard serve --config /etc/spoofguard/milter.toml \
    --socket "inet:127.0.0.1:$port" >"$WORK/serve.log" 2>&1 &
PIDS+=($!)
ok=0
for _ in $(seq 50); do
    if "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1).close()' "$port" 2>/dev/null; then
        ok=1
        break
    fi
    sleep 0.1
done
if ((ok)); then pass "installed_serve_as_user_spoofguard"; else fail "installed_serve_as_user_spoofguard" "$(tail -n 3 "$WORK/serve.log")"; fi
kill "${PIDS[-1]}" 2>/dev/null
wait "${PIDS[-1]}" 2>/dev/null

# ---------------------------------------------------------------- 4. purge
check "dpkg_purge" dpkg --purge spoofguard
left=()
while read -r _ _ _ _ _ path _; do
    p=/${path#./}
    [[ $p == */ ]] && continue
    [[ -e $p ]] && left+=("$p")
done <"$WORK/contents.txt"
if ((${#left[@]} == 0)); then pass "purge_removes_files"; else fail "purge_removes_files" "${left[*]}"; fi
check "purge_removes_etc" test ! -e /etc/spoofguard
check "purge_removes_user" sh -c '! getent passwd spoofguard'
check "purge_removes_package" sh -c '! dpkg -s spoofguard'
