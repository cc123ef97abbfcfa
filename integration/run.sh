#!/usr/bin/env bash
# Functions run through trap and wait_until look unreachable to shellcheck:
# shellcheck disable=SC2317
# Black-box integration tests of the spoofguard binary.
#
# Run from anywhere, as root or as a user with sudo (the script then runs itself through sudo;
# CI runs it as root with CI=true and no stdin):
#   bash integration/run.sh
# Environment:
#   SPOOFGUARD_BIN   use this binary instead of building target/release/spoofguard
#   STRICT_LEADSPC=0 only warn (default: fail) when the filter negotiates SMFIP_HDR_LEADSPC and
#                    then sends header values without the leading space
#   SKIP_SCENARIOS="a b" skip these scenarios by name (printed as SKIP, not counted); unset, it
#                    is SKIP_DEFAULT below; SKIP_SCENARIOS="" runs every scenario
#   KEEP_WORK=1      leave integration/work/ in place at the start (it is always kept at the end)
#
# The script installs what it lacks (the need_cmd / need_py list below, for both phases),
# generates DKIM keys, a root zone served by a private NSD on 127.0.0.1, signed
# messages and their miltertest data, starts spoofguard instances, runs every scenario in
# integration/miltertest/ and ends with one line "N passed, N failed".
# See docs/testing.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
INTEG=$ROOT/integration
WORK=$INTEG/work
SCRIPTS=$INTEG/miltertest
PY=/usr/bin/python3 # Debian's python, where python3-dkim and python3-nacl live
STRICT_LEADSPC=${STRICT_LEADSPC:-1}
# Scenarios skipped by default, only while a feature they test is not merged yet (the
# brand-impersonation scenarios were listed here until main had the engine). Assertions are
# never weakened instead.
SKIP_DEFAULT=""
SKIP_SCENARIOS=${SKIP_SCENARIOS-$SKIP_DEFAULT}

passed=0
failed=0
declare -a PIDS=()
declare -a FAILED_NAMES=()
declare -a SKIPPED_NAMES=()
# Functions cleanup() calls before (CLEANUP_FIRST) and after (CLEANUP_LAST) it stops PIDS.
declare -a CLEANUP_FIRST=()
declare -a CLEANUP_LAST=()

log() { printf '%s\n' "$*"; }

# Stop every process we started, by PID, on any exit.
cleanup() {
    local rc=$?
    local pid hook
    for hook in "${CLEANUP_FIRST[@]}"; do "$hook" || true; done
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    done
    for hook in "${CLEANUP_LAST[@]}"; do "$hook" || true; done
    exit "$rc"
}
trap cleanup EXIT

summary_and_exit() {
    if [[ -s ${WORK:-/nonexistent}/out/warnings.txt ]]; then
        log "warnings (not counted as failures):"
        sed 's/^[^:]*: //' "$WORK/out/warnings.txt" | sort | uniq -c | sed 's/^ */    /'
    fi
    if ((${#SKIPPED_NAMES[@]} > 0)); then
        log "skipped (not counted): ${SKIPPED_NAMES[*]}"
    fi
    if ((failed > 0)); then
        log "failed: ${FAILED_NAMES[*]}"
    fi
    log "$passed passed, $failed failed"
    if ((failed > 0)); then exit 1; fi
    exit 0
}

fail_now() {
    # A setup step failed: count it and stop.
    log "FAIL setup: $*"
    failed=$((failed + 1))
    FAILED_NAMES+=("setup")
    summary_and_exit
}

# ---------------------------------------------------------------- 1. tools
# shellcheck source=integration/lib.sh
source "$INTEG/lib.sh"
reexec_as_root "$@"
# Everything this script and integration/postfix.sh run, installed before the first use.
need_cmd /usr/bin/python3 python3
need_py dkim python3-dkim
need_py nacl python3-nacl
need_cmd miltertest miltertest
need_cmd nsd nsd
need_cmd nsd-checkzone nsd
need_cmd nsd-checkconf nsd
need_cmd dknewkey python3-dkim
need_cmd openssl openssl
need_cmd dig dnsutils
need_cmd timeout coreutils
need_cmd postfix postfix
need_cmd postqueue postfix
need_cmd postsuper postfix
need_cmd postcat postfix
need_cmd sendmail postfix
need_cmd smtp-sink postfix
need_cmd swaks swaks
need_cmd iptables iptables
need_cmd ip iproute2
if ! install_needed; then
    for t in "${MISSING[@]}"; do
        log "FAIL missing tool: $t"
        failed=$((failed + 1))
        FAILED_NAMES+=("missing:${t%% *}")
    done
    summary_and_exit
fi

# ---------------------------------------------------------------- 2. binary
if [[ -n ${SPOOFGUARD_BIN:-} ]]; then
    BIN=$SPOOFGUARD_BIN
else
    log "building: cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet </dev/null) || fail_now "cargo build --release"
    BIN=$ROOT/target/release/spoofguard
fi
[[ -x $BIN ]] || fail_now "no executable spoofguard at $BIN"
log "binary: $BIN"

# ---------------------------------------------------------------- 3. test data
if [[ -z ${KEEP_WORK:-} ]]; then rm -rf "$WORK"; fi
mkdir -p "$WORK"/{keys,msg,zone,nsd,log,out,cfg,sock}
chmod 0755 "$WORK" "$WORK/sock"

(cd "$WORK/keys" && dknewkey --ktype rsa rsa2048 && dknewkey --ktype ed25519 ed) \
    >"$WORK/log/dknewkey.log" 2>&1 || fail_now "dknewkey (see $WORK/log/dknewkey.log)"
grep -q 'p=' "$WORK/keys/rsa2048.dns" || fail_now "dknewkey wrote no RSA public key"
"$PY" "$INTEG/gen.py" "$WORK" || fail_now "gen.py"
nsd-checkzone . "$WORK/zone/root.zone" >"$WORK/log/nsd-checkzone.log" 2>&1 ||
    fail_now "nsd-checkzone: $(cat "$WORK/log/nsd-checkzone.log")"

# A free port on 127.0.0.1 for TCP (and UDP when $1 = udp).
free_port() {
    "$PY" - "${1:-tcp}" <<'EOF'
import socket, sys
for _ in range(100):
    t = socket.socket(); t.bind(("127.0.0.1", 0)); port = t.getsockname()[1]
    if sys.argv[1] == "udp":
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            continue
        u.close()
    t.close(); print(port); break
EOF
}

# Wait (bounded) until CMD succeeds; fail if process PID died first.
wait_until() {
    local what=$1 pid=$2 secs=$3
    shift 3
    local i
    for ((i = 0; i < secs * 10; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        kill -0 "$pid" 2>/dev/null || fail_now "$what exited before it was ready"
        sleep 0.1
    done
    fail_now "$what not ready after ${secs}s"
}

tcp_open() { "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1"; }
unix_open() { "$PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.settimeout(1); s.connect(sys.argv[1]); s.close()' "$1"; }

# ---------------------------------------------------------------- 4. NSD
DNS_PORT=$(free_port udp)
nsd_start "$WORK/log/nsd.out" "" "$WORK/nsd" "$WORK/zone" "$DNS_PORT" "$WORK/log/nsd.log" ||
    fail_now "nsd-checkconf"
PIDS+=("$NSD_PID")
dns_ready() { [[ $(dig +short +time=1 +tries=1 -p "$DNS_PORT" @127.0.0.1 TXT _dmarc.sender.example) == '"v=DMARC1; p=reject"' ]]; }
wait_until "nsd" "$NSD_PID" 15 dns_ready
log "nsd: 127.0.0.1:$DNS_PORT (pid $NSD_PID)"

# ---------------------------------------------------------------- 5. spoofguard instances
# write_config NAME LISTEN NAMESERVER [extra [milter] lines]
write_config() {
    local name=$1 listen=$2 ns=$3 extra=${4:-}
    cat >"$WORK/cfg/$name.toml" <<EOF
# generated by integration/run.sh
[milter]
listen = "$listen"
authserv_id = "mx.spoofguard.test"
$extra
[dns]
nameservers = ["$ns"]
timeout_secs = 2
attempts = 1

[auth]
trusted_networks = []
EOF
}

# start_milter NAME -> sets STARTED_PID; output goes to work/log/NAME.log
start_milter() {
    local name=$1
    "$BIN" serve --config "$WORK/cfg/$name.toml" >"$WORK/log/$name.log" 2>&1 </dev/null &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

MILTER_PORT=$(free_port)
write_config inet "inet:127.0.0.1:$MILTER_PORT" "127.0.0.1:$DNS_PORT"
UNIX_SOCK=$WORK/sock/spoofguard.sock
write_config unix "unix:$UNIX_SOCK" "127.0.0.1:$DNS_PORT" 'socket_mode = "0666"'
DROP_PORT=$(free_port udp)
DROP_MILTER_PORT=$(free_port)
write_config dnsdrop "inet:127.0.0.1:$DROP_MILTER_PORT" "127.0.0.1:$DROP_PORT"

# ---------------------------------------------------------------- 6. scenarios
result() {
    local name=$1 ok=$2 out=$3 milterlog=$4
    if [[ $ok == yes ]]; then
        passed=$((passed + 1))
        log "PASS $name"
    else
        failed=$((failed + 1))
        FAILED_NAMES+=("$name")
        log "FAIL $name"
        if [[ -s $out ]]; then
            log "---- output of $name (warnings are listed at the end):"
            grep -v '^WARN' "$out" | sed 's/^/    /' || true
        fi
        if [[ -n $milterlog && -e $milterlog ]]; then
            log "---- tail of $(basename "$milterlog"):"
            tail -n 20 "$milterlog" | plain | sed 's/^/    /'
        fi
    fi
    grep -h '^WARN' "$out" 2>/dev/null | sed "s/^/$name: /" >>"$WORK/out/warnings.txt" || true
}

# Strip ANSI colour codes (spoofguard's log may have them) when printing a log.
plain() { sed 's/\x1b\[[0-9;]*m//g'; }

# scenario NAME SCRIPT SOCKET MILTERLOG
scenario() {
    local name=$1 script=$2 socket=$3 milterlog=$4
    local out=$WORK/out/$name.txt ok=no
    if [[ " ${SKIP_SCENARIOS:-} " == *" $name "* ]]; then
        log "SKIP $name (SKIP_SCENARIOS)"
        SKIPPED_NAMES+=("$name")
        return 0
    fi
    if timeout 90 miltertest -D "COMMON=$SCRIPTS/common.lua" -D "DATA=$WORK/msg" \
        -D "SOCKET=$socket" -D "LOG=$milterlog" -D "STRICT_LEADSPC=$STRICT_LEADSPC" \
        -D "SCENARIO=$SCRIPTS/$script" -s "$SCRIPTS/runner.lua" >"$out" 2>&1 </dev/null; then
        ok=yes
    fi
    result "$name" "$ok" "$out" "$milterlog"
}

# config-check accepts every generated configuration.
out=$WORK/out/config_check.txt
: >"$out"
ok=yes
for c in inet unix dnsdrop; do
    if ! "$BIN" config-check --config "$WORK/cfg/$c.toml" >>"$out" 2>&1 </dev/null; then
        ok=no
        echo "config-check failed for $WORK/cfg/$c.toml" >>"$out"
    fi
done
result config_check "$ok" "$out" ""

start_milter inet
INET_PID=$STARTED_PID
wait_until "spoofguard (inet)" "$INET_PID" 20 tcp_open "$MILTER_PORT"
log "spoofguard: inet:127.0.0.1:$MILTER_PORT (pid $INET_PID)"
INET_SOCK="inet:$MILTER_PORT@127.0.0.1"
INET_LOG=$WORK/log/inet.log

scenario a_rsa_pass a_rsa_pass.lua "$INET_SOCK" "$INET_LOG"
scenario b_ed25519_pass b_ed25519_pass.lua "$INET_SOCK" "$INET_LOG"
scenario c_spoof_reject c_spoof_reject.lua "$INET_SOCK" "$INET_LOG"
scenario d_quarantine d_quarantine.lua "$INET_SOCK" "$INET_LOG"
scenario e_forged_results e_forged_results.lua "$INET_SOCK" "$INET_LOG"
scenario f_body_altered f_body_altered.lua "$INET_SOCK" "$INET_LOG"
scenario f2_body_altered_spf_pass f2_body_altered_spf_pass.lua "$INET_SOCK" "$INET_LOG"
scenario g_two_messages g_two_messages.lua "$INET_SOCK" "$INET_LOG"
scenario j_lookalike j_lookalike.lua "$INET_SOCK" "$INET_LOG"
scenario k_norecords k_norecords.lua "$INET_SOCK" "$INET_LOG"

# (h) the pass scenario again, over a unix socket (a second instance).
start_milter unix
UNIX_PID=$STARTED_PID
wait_until "spoofguard (unix)" "$UNIX_PID" 20 unix_open "$UNIX_SOCK"
log "spoofguard: unix:$UNIX_SOCK (pid $UNIX_PID)"
scenario h_unix_socket a_rsa_pass.lua "unix:$UNIX_SOCK" "$WORK/log/unix.log"
out=$WORK/out/h_unix_socket_mode.txt
mode=$(stat -c %a "$UNIX_SOCK" 2>&1 || true)
echo "socket mode: $mode (socket_mode = \"0666\")" >"$out"
result h_unix_socket_mode "$([[ $mode == 666 ]] && echo yes || echo no)" "$out" "$WORK/log/unix.log"

# (i) DNS timeout, last: an instance whose only nameserver drops every query.
"$PY" "$INTEG/dnsdrop.py" "$DROP_PORT" >"$WORK/log/dnsdrop-server.log" 2>&1 </dev/null &
DROP_PID=$!
PIDS+=("$DROP_PID")
wait_until "dnsdrop" "$DROP_PID" 10 grep -q listening "$WORK/log/dnsdrop-server.log"
start_milter dnsdrop
DROPM_PID=$STARTED_PID
wait_until "spoofguard (dnsdrop)" "$DROPM_PID" 20 tcp_open "$DROP_MILTER_PORT"
scenario i_dns_timeout i_dns_timeout.lua "inet:$DROP_MILTER_PORT@127.0.0.1" "$WORK/log/dnsdrop.log"

# ---------------------------------------------------------------- 7. behind a real Postfix
# shellcheck source=integration/postfix.sh
source "$INTEG/postfix.sh"

summary_and_exit
