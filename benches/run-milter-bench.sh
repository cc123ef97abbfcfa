#!/usr/bin/env bash
# shellcheck disable=SC2317
# End-to-end milter benchmark: spoofguard against a do-nothing milter and against Debian's
# OpenDKIM (Mode v) chained with OpenDMARC, on the same DKIM-signed messages, with real DNS
# traffic to a private NSD. Everything runs inside a network namespace created here (its own
# loopback; no traffic leaves it). See docs/performance.md.
#
#   bash benches/run-milter-bench.sh      (as root, or through sudo: it runs itself with sudo)
# Environment (all optional):
#   RESULTS_DIR   where raw JSON and logs go (default target/milter-bench/DATE)
#   REPS=3        repetitions per configuration and concurrency (the summary shows medians)
#   CONCS="1 8 64" concurrencies
#   CONFIGS="null-unix null-tcp sg-cold sg-warm sg-warm-tcp peers"  configurations to run
#   SIZES="10k 3k" messages to run
#   SKIP_BUILD=1  use the existing target/release binaries
#   SPOOFGUARD_BIN  the spoofguard binary to measure (default target/release/spoofguard)
# Every load run is bounded by a message count and by --max-secs; the whole script by
# `timeout` on each step. It ends with a summary table (also in RESULTS_DIR/summary.md).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$(realpath -m "${RESULTS_DIR:-$ROOT/target/milter-bench/$STAMP}")
WORK=$OUT/work
PY=/usr/bin/python3
REPS=${REPS:-3}
CONCS=${CONCS:-"1 8 64"}
CONFIGS=${CONFIGS:-"null-unix null-tcp sg-cold sg-warm sg-warm-tcp peers"}
SIZES=${SIZES:-"10k 3k"}
NS=sgbench$$
MAXSECS=60
export PATH="$PATH:/usr/sbin:/sbin"

# shellcheck source=integration/lib.sh
source "$ROOT/integration/lib.sh"
reexec_as_root "$@"

declare -a PIDS=()
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
    log "FATAL: $*"
    exit 1
}

cleanup() {
    local rc=$? pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 80); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    done
    netns_destroy "$NS"
    exit "$rc"
}
trap cleanup EXIT

# ------------------------------------------------------------------ tools
need_cmd "$PY" python3
need_py dkim python3-dkim
need_cmd nsd nsd
need_cmd nsd-checkzone nsd
need_cmd nsd-checkconf nsd
need_cmd opendkim opendkim
need_cmd opendmarc opendmarc
need_cmd dknewkey python3-dkim
need_cmd dig dnsutils
need_cmd ip iproute2
install_needed || die "missing after apt-get install: ${MISSING[*]}"
# The Debian packages may have started their own daemons (no systemd here usually): ours use
# their own sockets and configuration, so these do not interfere.

if [[ -z ${SKIP_BUILD:-} ]]; then
    log "cargo build --release --bins --examples"
    (cd "$ROOT" && timeout 1200 cargo build --release --bins --examples --quiet </dev/null) || die "build"
fi
BIN=$(realpath -m "${SPOOFGUARD_BIN:-$ROOT/target/release/spoofguard}")
LOAD=$ROOT/target/release/examples/milter_load
NULL=$ROOT/target/release/examples/null_milter
for b in "$BIN" "$LOAD" "$NULL"; do [[ -x $b ]] || die "missing $b"; done

# ------------------------------------------------------------------ data
mkdir -p "$WORK"/{keys,msg,zone,nsd,log,sock,cfg} "$OUT/raw"
chmod 0755 "$WORK" "$WORK/sock"
(cd "$WORK/keys" && dknewkey --ktype rsa rsa2048) >"$WORK/log/dknewkey.log" 2>&1 || die dknewkey
"$PY" "$ROOT/benches/milter-bench/gen.py" "$WORK" >&2 || die gen.py
nsd-checkzone . "$WORK/zone/root.zone" >/dev/null || die nsd-checkzone
declare -A MSG=([10k]=$WORK/msg/msg10k.eml [3k]=$WORK/msg/msg3k.eml)

# ------------------------------------------------------------------ namespace + NSD on :53
netns_create "$NS" || die "creating network namespace $NS"
nsx() { ip netns exec "$NS" "$@"; }
# No response rate limiting: the default (200 answers/s per client and name) drops answers to
# the peers, which query DNS for every message, and they then wait 5 s.
nsd_start "$WORK/log/nsd.out" "$NS" "$WORK/nsd" "$WORK/zone" 53 "$WORK/log/nsd.log" 0 \
    "rrl-ratelimit: 0" "rrl-whitelist-ratelimit: 0" || die "nsd-checkconf"
PIDS+=("$NSD_PID")
for _ in $(seq 100); do
    [[ $(nsx dig +short +time=1 +tries=1 @127.0.0.1 TXT _dmarc.sender.example 2>/dev/null) == *DMARC1* ]] && break
    sleep 0.1
done
[[ $(nsx dig +short +time=1 +tries=1 @127.0.0.1 TXT _dmarc.sender.example) == *DMARC1* ]] || die "nsd not answering"
log "nsd answering on 127.0.0.1:53 in netns $NS"

# ------------------------------------------------------------------ helpers
ulimit -n 16384
TICK=$(getconf CLK_TCK)
# cpu_ticks PID...: utime+stime of all the processes (all threads), in clock ticks.
cpu_ticks() {
    local t=0 p f
    for p in "$@"; do
        read -r -a f <"/proc/$p/stat"
        # fields after "(comm)": comm has no spaces for our daemons; utime=14, stime=15 (1-based)
        t=$((t + f[13] + f[14]))
    done
    echo "$t"
}
# mem_kb PID...: sum of VmRSS and of VmHWM in kB, as "rss hwm".
mem_kb() {
    local r=0 h=0 p v
    for p in "$@"; do
        v=$(awk '/^VmRSS/{print $2}' "/proc/$p/status")
        r=$((r + v))
        v=$(awk '/^VmHWM/{print $2}' "/proc/$p/status")
        h=$((h + v))
    done
    echo "$r $h"
}
wait_sock() {
    local path=$1 pid=$2
    for _ in $(seq 200); do
        [[ -S $path ]] && return 0
        kill -0 "$pid" 2>/dev/null || die "process $pid died before $path appeared (see $WORK/log)"
        sleep 0.05
    done
    die "no socket $path"
}
wait_port() {
    local port=$1 pid=$2
    for _ in $(seq 200); do
        nsx "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$port" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || die "process $pid died before port $port opened"
        sleep 0.05
    done
    die "port $port not open"
}
stop() {
    local pid
    for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
    for pid in "$@"; do
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

# Messages per connection: about 1000-2500 messages per run.
per_conn() {
    case $1 in
        1) echo 1000 ;;
        8) echo 250 ;;
        64) echo 40 ;;
        *) echo $((2000 / $1 + 1)) ;;
    esac
}

RESULTS=$OUT/raw/runs.jsonl
: >"$RESULTS"
# measure CONFIG SIZE CONC REP SOCKET [CHAIN] -- PIDS...: one load run, appended to runs.jsonl
measure() {
    local config=$1 size=$2 conc=$3 rep=$4 sock=$5 chain=$6
    shift 7
    local pids=("$@") m before after mem json load
    m=$(per_conn "$conc")
    load=$(cut -d' ' -f1 /proc/loadavg)
    before=$(cpu_ticks "${pids[@]}")
    local extra=()
    [[ -n $chain ]] && extra=(--chain "$chain")
    json=$(nsx timeout $((MAXSECS + 30)) "$LOAD" --socket "$sock" "${extra[@]}" \
        --connections "$conc" --messages "$m" --max-secs "$MAXSECS" --format json \
        --ip 192.0.2.10 --helo mail.sender.example --mail-from alice@sender.example \
        --rcpt bob@rcpt.example "${MSG[$size]}" 2>>"$WORK/log/load.err") || {
        log "load run failed: $config $size c=$conc rep=$rep (see $WORK/log/load.err)"
        json=${json:-'{"messages":0,"errors":1}'}
    }
    after=$(cpu_ticks "${pids[@]}")
    mem=$(mem_kb "${pids[@]}")
    "$PY" - "$config" "$size" "$conc" "$rep" "$((after - before))" "$TICK" "$mem" "$load" "$json" >>"$RESULTS" <<'EOF'
import json, sys
config, size, conc, rep, ticks, tick, mem, load, raw = sys.argv[1:]
r = json.loads(raw)
rss, hwm = (int(x) for x in mem.split())
n = r.get("messages", 0)
cpu = int(ticks) / int(tick)
r.update(config=config, size=size, conc=int(conc), rep=int(rep), milter_cpu_s=cpu,
         cpu_ms_per_msg=(cpu * 1000 / n if n else None), rss_kb=rss, hwm_kb=hwm,
         loadavg_before=float(load))
print(json.dumps(r))
EOF
    tail -n 1 "$RESULTS" | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print("  %-12s %-3s c=%-3d rep %d: %7.1f msg/s  eom p50 %.2f p99 %.2f ms  cpu %.2f ms/msg  rss %d MB  replies %s errors %s" % (r["config"], r["size"], r["conc"], r["rep"], r.get("msg_per_s",0), r.get("eom",{}).get("p50_ms",0), r.get("eom",{}).get("p99_ms",0), r["cpu_ms_per_msg"] or 0, r["rss_kb"]//1024, r.get("replies"), r.get("errors")))' >&2
}

# ------------------------------------------------------------------ milters
sg_config() {
    local name=$1 listen=$2 extra_lines=${3:-}
    cat >"$WORK/cfg/$name.toml" <<EOF
[milter]
listen = "$listen"
socket_mode = "0666"
authserv_id = "mx.bench.example"
$extra_lines
[dns]
nameservers = ["127.0.0.1:53"]
[auth]
trusted_networks = []
EOF
}
SG_SOCK=$WORK/sock/spoofguard.sock
sg_config unix "unix:$SG_SOCK"
sg_config tcp "inet:127.0.0.1:8891"
start_sg() { # start_sg NAME -> STARTED
    [[ $1 == unix ]] && rm -f "$SG_SOCK"
    ip netns exec "$NS" "$BIN" serve --config "$WORK/cfg/$1.toml" >>"$WORK/log/spoofguard-$1.log" 2>&1 </dev/null &
    STARTED=$!
    PIDS+=("$STARTED")
}

cat >"$WORK/cfg/opendkim.conf" <<EOF
Syslog                  no
Background              no
Mode                    v
Socket                  local:$WORK/sock/opendkim.sock
UMask                   000
PidFile                 $WORK/opendkim.pid
AuthservID              mx.bench.example
Nameservers             127.0.0.1
SoftwareHeader          no
QueryCache              yes
EOF
cat >"$WORK/cfg/opendmarc.conf" <<EOF
Syslog                  false
Background              false
Socket                  local:$WORK/sock/opendmarc.sock
UMask                   000
PidFile                 $WORK/opendmarc.pid
AuthservID              mx.bench.example
TrustedAuthservIDs      mx.bench.example
SPFSelfValidate         true
FailureReports          false
RejectFailures          false
EOF
start_peers() { # -> DKIM_PID DMARC_PID
    rm -f "$WORK/sock/opendkim.sock" "$WORK/sock/opendmarc.sock"
    ip netns exec "$NS" opendkim -f -x "$WORK/cfg/opendkim.conf" >>"$WORK/log/opendkim.log" 2>&1 </dev/null &
    DKIM_PID=$!
    PIDS+=("$DKIM_PID")
    ip netns exec "$NS" opendmarc -f -c "$WORK/cfg/opendmarc.conf" >>"$WORK/log/opendmarc.log" 2>&1 </dev/null &
    DMARC_PID=$!
    PIDS+=("$DMARC_PID")
    wait_sock "$WORK/sock/opendkim.sock" "$DKIM_PID"
    wait_sock "$WORK/sock/opendmarc.sock" "$DMARC_PID"
}

has() { [[ " $CONFIGS " == *" $1 "* ]]; }

log "machine: $(nproc) cores, $(awk '/MemTotal/{print $2/1024/1024 " GiB"}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
log "messages: $(stat -c '%n %s' "${MSG[10k]}" "${MSG[3k]}" | xargs -n2 basename | paste -sd' ')"

for size in $SIZES; do
    # -- do-nothing milter, unix and TCP: one process per transport for all runs
    if has null-unix || has null-tcp; then
        ip netns exec "$NS" "$NULL" --socket "unix:$WORK/sock/null.sock" >"$WORK/log/null-unix.log" 2>&1 </dev/null &
        NU=$!
        PIDS+=("$NU")
        ip netns exec "$NS" "$NULL" --socket inet:127.0.0.1:8899 >"$WORK/log/null-tcp.log" 2>&1 </dev/null &
        NT=$!
        PIDS+=("$NT")
        wait_sock "$WORK/sock/null.sock" "$NU"
        wait_port 8899 "$NT"
        for conc in $CONCS; do
            for rep in $(seq "$REPS"); do
                has null-unix && measure null-unix "$size" "$conc" "$rep" "unix:$WORK/sock/null.sock" "" -- "$NU"
                has null-tcp && measure null-tcp "$size" "$conc" "$rep" "inet:127.0.0.1:8899" "" -- "$NT"
            done
        done
        stop "$NU" "$NT"
    fi

    # -- spoofguard, cold cache: a fresh process for every run
    if has sg-cold; then
        for conc in $CONCS; do
            for rep in $(seq "$REPS"); do
                start_sg unix
                SG=$STARTED
                wait_sock "$SG_SOCK" "$SG"
                measure sg-cold "$size" "$conc" "$rep" "unix:$SG_SOCK" "" -- "$SG"
                stop "$SG"
            done
        done
    fi

    # -- spoofguard, warm cache: one process, warmed with 20 messages first
    if has sg-warm || has sg-warm-tcp; then
        start_sg unix
        SGU=$STARTED
        start_sg tcp
        SGT=$STARTED
        wait_sock "$SG_SOCK" "$SGU"
        wait_port 8891 "$SGT"
        for pair in "unix:$SG_SOCK" inet:127.0.0.1:8891; do
            nsx timeout 60 "$LOAD" --socket "$pair" --connections 1 --messages 20 --max-secs 30 \
                --ip 192.0.2.10 --helo mail.sender.example "${MSG[$size]}" >/dev/null 2>>"$WORK/log/load.err"
        done
        for conc in $CONCS; do
            for rep in $(seq "$REPS"); do
                has sg-warm && measure sg-warm "$size" "$conc" "$rep" "unix:$SG_SOCK" "" -- "$SGU"
                has sg-warm-tcp && measure sg-warm-tcp "$size" "$conc" "$rep" inet:127.0.0.1:8891 "" -- "$SGT"
            done
        done
        stop "$SGU" "$SGT"
    fi

    # -- OpenDKIM (Mode v) -> OpenDMARC over unix sockets, chained as Postfix does
    if has peers; then
        start_peers
        nsx timeout 60 "$LOAD" --socket "unix:$WORK/sock/opendkim.sock" \
            --chain "unix:$WORK/sock/opendmarc.sock" --connections 1 --messages 20 --max-secs 30 \
            --ip 192.0.2.10 --helo mail.sender.example "${MSG[$size]}" >/dev/null 2>>"$WORK/log/load.err"
        for conc in $CONCS; do
            for rep in $(seq "$REPS"); do
                measure peers "$size" "$conc" "$rep" "unix:$WORK/sock/opendkim.sock" \
                    "unix:$WORK/sock/opendmarc.sock" -- "$DKIM_PID" "$DMARC_PID"
            done
        done
        stop "$DKIM_PID" "$DMARC_PID"
    fi
done

# ------------------------------------------------------------------ 500 idle connections
HOLD=$OUT/raw/hold.jsonl
: >"$HOLD"
# hold_rss NAME SOCKET PIDS...: RSS before, with 500 negotiated idle connections, and after.
hold_rss() {
    local name=$1 sock=$2
    shift 2
    local before during ready=$WORK/hold.ready
    rm -f "$ready"
    before=$(mem_kb "$@")
    ip netns exec "$NS" timeout 90 "$LOAD" --socket "$sock" --hold 500 --hold-secs 4 --max-secs 60 \
        --ready-file "$ready" >"$WORK/log/hold-$name.out" 2>&1 &
    local lp=$!
    for _ in $(seq 600); do
        [[ -s $ready ]] && break
        kill -0 "$lp" 2>/dev/null || break
        sleep 0.1
    done
    sleep 1
    during=$(mem_kb "$@")
    local held
    held=$(cat "$ready" 2>/dev/null || echo 0)
    wait "$lp" || true
    echo "{\"config\":\"$name\",\"held\":${held:-0},\"rss_kb_before\":${before% *},\"rss_kb_held\":${during% *},\"hwm_kb\":${during#* }}" >>"$HOLD"
    log "  hold $name: ${held:-0} connections, RSS ${before% *} kB -> ${during% *} kB (HWM ${during#* } kB)"
}
log "500 idle connections"
start_sg unix
SGU=$STARTED
wait_sock "$SG_SOCK" "$SGU"
nsx timeout 60 "$LOAD" --socket "unix:$SG_SOCK" --connections 8 --messages 50 --max-secs 30 \
    --ip 192.0.2.10 --helo mail.sender.example "${MSG[10k]}" >/dev/null 2>>"$WORK/log/load.err"
hold_rss spoofguard "unix:$SG_SOCK" "$SGU"
stop "$SGU"
ip netns exec "$NS" "$NULL" --socket "unix:$WORK/sock/null.sock" >"$WORK/log/null-hold.log" 2>&1 </dev/null &
NU=$!
PIDS+=("$NU")
wait_sock "$WORK/sock/null.sock" "$NU"
hold_rss null "unix:$WORK/sock/null.sock" "$NU"
stop "$NU"
start_peers
hold_rss opendkim "unix:$WORK/sock/opendkim.sock" "$DKIM_PID"
hold_rss opendmarc "unix:$WORK/sock/opendmarc.sock" "$DMARC_PID"
stop "$DKIM_PID" "$DMARC_PID"

# ------------------------------------------------------------------ max_message_bytes
log "oversize: 20 MB messages, max_message_bytes = 1 MiB, 8 connections x 3"
sg_config cap "unix:$WORK/sock/cap.sock" 'max_message_bytes = 1048576'
ip netns exec "$NS" "$BIN" serve --config "$WORK/cfg/cap.toml" >"$WORK/log/spoofguard-cap.log" 2>&1 </dev/null &
CAP=$!
PIDS+=("$CAP")
wait_sock "$WORK/sock/cap.sock" "$CAP"
capmem0=$(mem_kb "$CAP")
capjson=$(nsx timeout 120 "$LOAD" --socket "unix:$WORK/sock/cap.sock" --connections 8 --messages 3 \
    --max-secs 90 --format json --ip 192.0.2.10 --helo mail.sender.example "$WORK/msg/big.eml" \
    2>>"$WORK/log/load.err" || echo '{}')
capmem1=$(mem_kb "$CAP")
stop "$CAP"
echo "{\"max_message_bytes\":1048576,\"message_bytes\":$(stat -c %s "$WORK/msg/big.eml"),\"rss_kb_before\":${capmem0% *},\"rss_kb_after\":${capmem1% *},\"hwm_kb\":${capmem1#* },\"load\":$capjson}" >"$OUT/raw/oversize.json"
log "  oversize: RSS ${capmem0% *} kB before, HWM ${capmem1#* } kB after 24 messages of 20 MB"

# ------------------------------------------------------------------ summary
"$PY" "$ROOT/benches/milter-bench/summary.py" "$OUT" | tee "$OUT/summary.md"
log "raw results in $OUT/raw, logs in $WORK/log"
