# shellcheck shell=bash
# shellcheck disable=SC2317
# The Postfix phase of integration/run.sh (sourced by it, after the miltertest phase; it uses
# run.sh's BIN, PY, WORK, INTEG, PIDS, log, result, fail_now, wait_until, write_config).
#
# Everything runs inside a network namespace created here ($PF_NS): a second NSD on
# 127.0.0.1:53 (the namespace's /etc/resolv.conf points at it), two spoofguard instances (inet
# and unix socket), a private Postfix instance (own main.cf/master.cf, queue and data directory
# under work/pf/, nothing in /etc/postfix is read or changed) with two smtpd listeners, and
# smtp-sink, which stores every delivered message as a file. swaks (and pftool.py for several
# messages on one connection) send test mail with XCLIENT so that SPF sees the client IP meant.
#
#   127.0.0.1:2525  smtpd, smtpd_milters = inet:127.0.0.1:10025  (spoofguard "pf_inet")
#   127.0.0.1:2526  smtpd, smtpd_milters = unix:$WORK/sock/pf.sock (spoofguard "pf_unix")
#   127.0.0.1:2500  smtp-sink -d $WORK/pf/sink/%M.   (Postfix relays everything there)
#
# Per-scenario output: work/out/NAME.txt (and NAME.swaks); logs: work/log/pf_*.log,
# work/log/postfix.log.

PF=$WORK/pf
PF_CONF=$PF/etc
PF_SINK=$PF/sink
PF_SOCK=$WORK/sock/pf.sock
PF_NS=sg-integ-$$
PF_INET_PORT=2525
PF_UNIX_PORT=2526
PF_SINK_PORT=2500
PF_MILTER_PORT=10025
MSG=$WORK/msg
AUTHSERV=mx.spoofguard.test

# ------------------------------------------------------------------ namespace and cleanup
pf_cleanup() {
    # Postfix first (its master forks children that run as postfix), then the namespace.
    if [[ -z ${PF_MASTER_PID:-} && -s $PF/queue/pid/master.pid ]]; then
        PF_MASTER_PID=$(tr -d ' ' <"$PF/queue/pid/master.pid")
    fi
    if [[ -n ${PF_MASTER_PID:-} ]]; then
        postfix -c "$PF_CONF" stop >/dev/null 2>&1 || kill "$PF_MASTER_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$PF_MASTER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$PF_MASTER_PID" 2>/dev/null || true
    fi
}
pf_cleanup_ns() {
    if [[ -n ${PF_NS_MADE:-} ]]; then netns_destroy "$PF_NS"; fi
}
CLEANUP_FIRST+=(pf_cleanup)
CLEANUP_LAST+=(pf_cleanup_ns)

nx() { ip netns exec "$PF_NS" "$@"; }

rm -rf "$PF"
mkdir -p "$PF_CONF" "$PF/queue" "$PF/data" "$PF_SINK" "$PF/nsd"
chown postfix "$PF/data"

PF_NS_MADE=1
netns_create "$PF_NS" || fail_now "creating network namespace $PF_NS (ip netns add, lo up)"
log "netns: $PF_NS"

# DNS timeout domain: queries naming slowdns.example are dropped (UDP and TCP).
for proto in udp tcp; do
    nx iptables -A INPUT -p "$proto" --dport 53 -m string --algo bm --icase \
        --hex-string '|07|slowdns|07|example|00|' -j DROP ||
        fail_now "iptables string match in $PF_NS (kernel module xt_string?)"
done

# ------------------------------------------------------------------ NSD on 127.0.0.1:53
nsd_start "$WORK/log/pf_nsd.out" "$PF_NS" "$PF/nsd" "$WORK/zone" 53 "$WORK/log/pf_nsd.log" ||
    fail_now "nsd-checkconf (netns)"
PF_NSD_PID=$NSD_PID
PIDS+=("$PF_NSD_PID")
# through the namespace's resolv.conf, as glibc-based tools see it
pf_dns_ready() { [[ $(nx dig +short +time=1 +tries=1 TXT _dmarc.sender.example) == '"v=DMARC1; p=reject"' ]]; }
wait_until "nsd (netns)" "$PF_NSD_PID" 15 pf_dns_ready
if nx dig +time=1 +tries=1 TXT _dmarc.slowdns.example >/dev/null 2>&1; then
    fail_now "queries for slowdns.example are answered; the iptables drop does not work"
fi
log "nsd (netns): 127.0.0.1:53 (pid $PF_NSD_PID)"

# ------------------------------------------------------------------ spoofguard instances
write_config pf_inet "inet:127.0.0.1:$PF_MILTER_PORT" "127.0.0.1:53"
write_config pf_unix "unix:$PF_SOCK" "127.0.0.1:53" 'socket_mode = "0666"'
for c in pf_inet pf_unix; do
    "$BIN" config-check --config "$WORK/cfg/$c.toml" >"$WORK/out/config_check_$c.txt" 2>&1 </dev/null ||
        fail_now "config-check $c: $(cat "$WORK/out/config_check_$c.txt")"
done

pf_tcp_open() { nx "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1"; }

# pf_start_milter inet|unix: (re)start that instance in the namespace; its log is appended to.
pf_start_milter() {
    local kind=$1
    ip netns exec "$PF_NS" "$BIN" serve --config "$WORK/cfg/pf_$kind.toml" \
        >>"$WORK/log/pf_$kind.log" 2>&1 </dev/null &
    local pid=$!
    PIDS+=("$pid")
    local i
    if [[ $kind == inet ]]; then PF_INET_PID=$pid; else PF_UNIX_PID=$pid; fi
    for ((i = 0; i < 200; i++)); do
        if [[ $kind == inet ]]; then
            pf_tcp_open "$PF_MILTER_PORT" >/dev/null 2>&1 && return 0
        else
            unix_open "$PF_SOCK" >/dev/null 2>&1 && return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "FAIL: spoofguard (pf_$kind) exited before it was ready:"
            tail -n 5 "$WORK/log/pf_$kind.log" | sed 's/^/    /'
            return 1
        fi
        sleep 0.1
    done
    echo "FAIL: spoofguard (pf_$kind) not ready after 20 s"
    return 1
}
# pf_stop_milter inet|unix: SIGTERM, wait until it has exited.
pf_stop_milter() {
    local pid
    if [[ $1 == inet ]]; then pid=$PF_INET_PID; else pid=$PF_UNIX_PID; fi
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "FAIL: spoofguard pid $pid still running 10 s after SIGTERM"
    kill -9 "$pid" 2>/dev/null || true
    return 1
}
: >"$WORK/log/pf_inet.log"
: >"$WORK/log/pf_unix.log"
pf_start_milter inet || fail_now "spoofguard (pf_inet) did not start"
pf_start_milter unix || fail_now "spoofguard (pf_unix) did not start"
log "spoofguard (netns): inet:127.0.0.1:$PF_MILTER_PORT (pid $PF_INET_PID), unix:$PF_SOCK (pid $PF_UNIX_PID)"

# ------------------------------------------------------------------ smtp-sink
# smtp-sink refuses to run as root: it runs as postfix and writes its files as that user.
chown postfix "$PF_SINK"
ip netns exec "$PF_NS" smtp-sink -u postfix -d "$PF_SINK/%M." "127.0.0.1:$PF_SINK_PORT" 100 \
    >"$WORK/log/pf_sink.log" 2>&1 </dev/null &
PF_SINK_PID=$!
PIDS+=("$PF_SINK_PID")
wait_until "smtp-sink" "$PF_SINK_PID" 10 pf_tcp_open "$PF_SINK_PORT"

# ------------------------------------------------------------------ private Postfix
cat >"$PF_CONF/main.cf" <<EOF
# generated by integration/postfix.sh: a private Postfix instance for the integration run
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.spoofguard.test
mydomain = spoofguard.test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = rcpt.example
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# every message goes to smtp-sink; no MX or A lookups for delivery
relayhost = [127.0.0.1]:$PF_SINK_PORT
smtp_dns_support_level = disabled
smtpd_authorized_xclient_hosts = 127.0.0.0/8
smtpd_tls_security_level = none
smtp_tls_security_level = none
biff = no
maillog_file = $WORK/log/postfix.log
maillog_file_prefixes = $WORK/log
# ---- the milter part, as in docs/postfix.md
smtpd_milters = inet:127.0.0.1:$PF_MILTER_PORT
non_smtpd_milters = \$smtpd_milters
milter_default_action = tempfail
milter_protocol = 6
EOF
# No service is chrooted (5th column "n"), so the absolute unix socket path works.
cat >"$PF_CONF/master.cf" <<EOF
# generated by integration/postfix.sh
127.0.0.1:$PF_INET_PORT inet n - n - - smtpd
127.0.0.1:$PF_UNIX_PORT inet n - n - - smtpd -o smtpd_milters=unix:$PF_SOCK
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0  cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - -  trivial-rewrite
bounce    unix  - - n - 0  bounce
defer     unix  - - n - 0  bounce
trace     unix  - - n - 0  bounce
verify    unix  - - n - 1  verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - -  proxymap
smtp      unix  - - n - -  smtp
relay     unix  - - n - -  smtp
showq     unix  n - n - -  showq
error     unix  - - n - -  error
retry     unix  - - n - -  error
discard   unix  - - n - -  discard
anvil     unix  - - n - 1  anvil
scache    unix  - - n - 1  scache
postlog   unix-dgram n - n - 1 postlogd
EOF
: >"$WORK/log/postfix.log"
nx postfix -c "$PF_CONF" check >"$WORK/log/postfix-check.log" 2>&1 ||
    fail_now "postfix check: $(cat "$WORK/log/postfix-check.log")"
nx postfix -c "$PF_CONF" start >"$WORK/log/postfix-start.log" 2>&1 ||
    fail_now "postfix start: $(cat "$WORK/log/postfix-start.log") $(tail -n 5 "$WORK/log/postfix.log")"
for _ in $(seq 50); do
    PF_MASTER_PID=$(tr -d ' ' 2>/dev/null <"$PF/queue/pid/master.pid" || true)
    [[ -n $PF_MASTER_PID ]] && break
    sleep 0.1
done
[[ -n $PF_MASTER_PID ]] || fail_now "postfix master.pid not written"
pf_banner() {
    nx "$PY" - "$1" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2)
s.settimeout(2)
assert s.recv(512).startswith(b"220 "), "no 220"
s.sendall(b"QUIT\r\n")
s.close()
EOF
}
wait_until "postfix smtpd :$PF_INET_PORT" "$PF_MASTER_PID" 20 pf_banner "$PF_INET_PORT"
wait_until "postfix smtpd :$PF_UNIX_PORT" "$PF_MASTER_PID" 20 pf_banner "$PF_UNIX_PORT"
log "postfix: master pid $PF_MASTER_PID, smtpd 127.0.0.1:$PF_INET_PORT (inet milter), 127.0.0.1:$PF_UNIX_PORT (unix milter)"

# ------------------------------------------------------------------ scenario helpers
PF_OK=yes
bad() {
    echo "FAIL: $*"
    PF_OK=no
}
# expect WHAT GOT WANT
expect() {
    if [[ $2 == "$3" ]]; then
        echo "ok: $1"
    else
        bad "$1"
        printf '    got:  %q\n    want: %q\n' "$2" "$3"
    fi
}

# pf_swaks NAME PORT IP HELO MAILFROM RCPTS EML: send with swaks; sets REPLY and QID.
pf_swaks() {
    local name=$1 port=$2 ip=$3 helo=$4 from=$5 to=$6 eml=$7
    local out=$WORK/out/$name.swaks
    nx swaks --server "127.0.0.1:$port" --xclient-addr "$ip" --xclient-name "$helo" \
        --xclient-helo "$helo" --helo "$helo" --from "$from" --to "$to" \
        --data "@$eml" --timeout 120 >"$out" 2>&1 </dev/null || true
    REPLY=$("$PY" "$INTEG/pftool.py" reply "$out")
    QID=$("$PY" "$INTEG/pftool.py" qid "$out")
    echo "swaks ($name): $REPLY"
}

queued_re='^250 2\.0\.0 Ok: queued as [0-9A-Za-z]+$'
expect_queued() {
    if [[ $REPLY =~ $queued_re ]]; then echo "ok: reply $REPLY"; else bad "reply: got $REPLY, want 250 2.0.0 Ok: queued as QID"; fi
}

# pf_delivered QID: sets FILE to the sink file of that message (waits up to 30 s).
pf_delivered() {
    FILE=$("$PY" "$INTEG/pftool.py" find "$PF_SINK" "$1" 30) || {
        FILE=
        bad "message $1 not delivered to the sink within 30 s"
        tail -n 10 "$WORK/log/postfix.log" | sed 's/^/    postfix: /'
        return 1
    }
    echo "delivered: $FILE"
}
hdr() { "$PY" "$INTEG/pftool.py" headers "$FILE" "$1"; }

# The exact unfolded Authentication-Results of a DKIM-signed sender.example message.
ar_pass() {
    local eml=$1 sel=$2 alg=$3 b8
    b8=$("$PY" "$INTEG/pftool.py" b8 "$eml")
    printf 'Authentication-Results: %s;\tspf=pass smtp.mailfrom=alice@sender.example;\tdkim=pass header.d=sender.example header.s=%s header.a=%s header.b=%s;\tarc=none;\tdmarc=pass (p=reject dis=none) header.from=sender.example policy.dmarc=reject' \
        "$AUTHSERV" "$sel" "$alg" "$b8"
}

# check_accept_headers EML SEL ALG: the delivered FILE has exactly our pass headers.
check_accept_headers() {
    local ours
    ours=$(hdr Authentication-Results | grep -i "^Authentication-Results: *$AUTHSERV;" || true)
    expect "Authentication-Results (unfolded, exactly one of ours)" "$ours" "$(ar_pass "$1" "$2" "$3")"
    local first
    first=$(grep -m1 -a '^Authentication-Results:' "$FILE" | tr -d '\r')
    expect "header line starts with one space after the colon" "${first:0:26}" "Authentication-Results: mx"
    expect "X-Spoofguard-Verdict" "$(hdr X-Spoofguard-Verdict)" "X-Spoofguard-Verdict: accept"
    expect "X-Spoofguard-Score" "$(hdr X-Spoofguard-Score)" "X-Spoofguard-Score: 0.0"
    expect "X-Spoofguard-Reasons" "$(hdr X-Spoofguard-Reasons)" "X-Spoofguard-Reasons: none"
}

# The queue_name of QID in this instance's queue (empty when not queued).
pf_queue_of() {
    nx postqueue -c "$PF_CONF" -j >"$PF/queue.json" 2>>"$WORK/log/postqueue.err" || true
    "$PY" "$INTEG/pftool.py" queue "$PF/queue.json" "$1"
}
# pf_held_headers QID: sets FILE to the header of a queued (held) message, from postcat.
pf_held_headers() {
    FILE=$PF/held-$1.txt
    nx postcat -c "$PF_CONF" -h -q "$1" >"$FILE" 2>&1 || bad "postcat -q $1: $(cat "$FILE")"
}
# The results of an unsigned message failing DMARC, from 198.51.100.66.
ar_fail() {
    local from=$1 domain=$2 policy=$3 dis=$4
    printf 'Authentication-Results: %s;\tspf=fail smtp.mailfrom=%s;\tdkim=none;\tarc=none;\tdmarc=fail (p=%s dis=%s) header.from=%s policy.dmarc=%s' \
        "$AUTHSERV" "$from" "$policy" "$dis" "$domain" "$policy"
}
check_held_headers() {
    local from=$1 domain=$2 policy=$3
    expect "held: Authentication-Results" "$(hdr Authentication-Results)" "$(ar_fail "$from" "$domain" "$policy" quarantine)"
    expect "held: X-Spoofguard-Verdict" "$(hdr X-Spoofguard-Verdict)" "X-Spoofguard-Verdict: quarantine"
    expect "held: X-Spoofguard-Score" "$(hdr X-Spoofguard-Score)" "X-Spoofguard-Score: 5.0"
    expect "held: X-Spoofguard-Reasons" "$(hdr X-Spoofguard-Reasons)" \
        "X-Spoofguard-Reasons: DMARC_FAIL=+4.0 ($domain p=$policy);	SPF_FAIL=+1.0 ($domain)"
}

# Nothing of this Message-ID reached the sink.
expect_not_delivered() {
    sleep 1 # a wrongly queued message would reach the sink within this
    expect "delivered copies of <$1>" "$("$PY" "$INTEG/pftool.py" grep-msgid "$PF_SINK" "$1")" ""
}
# The queue is empty (within 10 s: an earlier message may still be leaving for the sink).
expect_queue_empty() {
    local i
    for ((i = 0; i < 100; i++)); do
        nx postqueue -c "$PF_CONF" -j >"$PF/queue.json" 2>/dev/null || true
        [[ -s $PF/queue.json ]] || break
        sleep 0.1
    done
    expect "mail queue (postqueue -j)" "$(cat "$PF/queue.json")" ""
}
# Log lines spoofguard wrote since MARK (a line count) in work/log/pf_KIND.log.
log_mark() { wc -l <"$WORK/log/pf_$1.log"; }
log_since() { tail -n "+$(($2 + 1))" "$WORK/log/pf_$1.log" | sed 's/\x1b\[[0-9;]*m//g'; }

# pf_run NAME FUNC ARGS...: one scenario, counted by run.sh's result().
pf_run() {
    local name=$1
    shift
    if [[ " ${SKIP_SCENARIOS:-} " == *" $name "* ]]; then
        log "SKIP $name (SKIP_SCENARIOS)"
        SKIPPED_NAMES+=("$name")
        return 0
    fi
    local out=$WORK/out/$name.txt
    PF_OK=yes
    PF_NAME=$name
    "$@" >"$out" 2>&1 || PF_OK=no
    result "$name" "$PF_OK" "$out" "$WORK/log/pf_${PF_KIND}.log"
}

# ------------------------------------------------------------------ scenarios
# PF_KIND (inet|unix) selects the smtpd port and the spoofguard instance behind it.
port_of() { if [[ $PF_KIND == inet ]]; then echo "$PF_INET_PORT"; else echo "$PF_UNIX_PORT"; fi; }

# (1) legitimate DKIM-signed mail from 192.0.2.10 is delivered with our headers.
s_pass() {
    local msg=$1 sel=$2 alg=$3
    pf_swaks "$PF_NAME" "$(port_of)" 192.0.2.10 mail.sender.example alice@sender.example \
        bob@rcpt.example "$MSG/$msg.eml"
    expect_queued
    [[ -n $QID ]] && pf_delivered "$QID" && check_accept_headers "$MSG/$msg.eml" "$sel" "$alg"
    # the queue id comes from the i macro that spoofguard requested during negotiation
    local line
    line=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/log/pf_$PF_KIND.log" | grep -F "queue_id=\"$QID\"" || true)
    [[ $line == *'client_ip="192.0.2.10" from_domain="sender.example" spf=pass dkim=pass arc=none dmarc=pass score=0.0 decision=accept'* ]] ||
        bad "no log line with queue_id=\"$QID\" and the pass results: ${line:-none}"
}

# (2) unsigned spoof of sender.example (p=reject) from a foreign IP: 550, nothing delivered.
s_spoof() {
    pf_swaks "$PF_NAME" "$(port_of)" 198.51.100.66 mail.attacker.example ceo@sender.example \
        bob@rcpt.example "$MSG/spoof_unsigned.eml"
    expect "SMTP reply" "$REPLY" "550 5.7.1 Rejected per DMARC policy for sender.example"
    expect_not_delivered spoof@attacker.example
    expect_queue_empty
}

# (3) quarantine.example (p=quarantine) fails: held in Postfix's hold queue, not delivered.
s_quarantine() {
    pf_swaks "$PF_NAME" "$(port_of)" 198.51.100.66 mail.attacker.example billing@quarantine.example \
        bob@rcpt.example "$MSG/quarantine_fail.eml"
    expect_queued
    [[ -n $QID ]] || return 0
    expect "queue of $QID" "$(pf_queue_of "$QID")" "hold"
    pf_held_headers "$QID"
    check_held_headers billing@quarantine.example quarantine.example quarantine
    expect_not_delivered q-fail@attacker.example
    nx postsuper -c "$PF_CONF" -d "$QID" hold >/dev/null 2>&1 || bad "postsuper -d $QID hold"
}

# (4) the lookalike brand phish with valid SPF/DKIM/DMARC of its own: held or rejected by
# the default policy, with reason codes in the log line.
s_brand_phish() {
    local d=microsoft-securityprotection-support.example mark
    mark=$(log_mark "$PF_KIND")
    pf_swaks "$PF_NAME" "$(port_of)" 192.0.2.40 "mail.$d" "security@$d" bob@rcpt.example \
        "$MSG/brand_phish.eml"
    local line
    line=$(log_since "$PF_KIND" "$mark" | grep 'message evaluated' | grep "from_domain=\"\?$d" || true)
    echo "log: $line"
    [[ -n $line ]] || bad "no 'message evaluated' log line for $d"
    local reasons
    reasons=$(sed -n 's/.* reasons=\(.*\)$/\1/p' <<<"$line" | tr -d '"')
    [[ -n $reasons && $reasons != none ]] || bad "log line: reasons= is empty"
    if [[ $REPLY == 550\ 5.7.1\ * ]]; then
        echo "ok: rejected: $REPLY"
        [[ $line == *decision=reject* ]] || bad "log line: want decision=reject"
        # docs/headers.md: "550 5.7.1 Message rejected: score 23.0 (CODE, CODE, ...)"
        local want_re='^550 5\.7\.1 Message rejected: score [0-9]+\.[0-9] \([A-Z_]+(, [A-Z_]+)*\)$'
        if [[ $REPLY =~ $want_re ]]; then
            echo "ok: reply in the documented form"
        else
            bad "reply not in the documented form 'score N.N (CODE, ...)' of docs/headers.md: $REPLY"
        fi
        local code codes
        read -ra codes <<<"$(sed 's/.*score [0-9.]* //; s/[^A-Z_,]//g; s/^_*//; s/_*$//; s/,/ /g' <<<"$REPLY")"
        for code in "${codes[@]}"; do
            [[ ",$reasons," == *",$code,"* ]] || bad "reply names $code, which the log line's reasons= lacks"
        done
    elif [[ $REPLY =~ $queued_re ]]; then
        expect "queue of $QID" "$(pf_queue_of "$QID")" "hold"
        [[ $line == *decision=quarantine* ]] || bad "log line: want decision=quarantine"
        nx postsuper -c "$PF_CONF" -d "$QID" hold >/dev/null 2>&1 || true
    else
        bad "reply: got $REPLY, want a 550 reject or a queued (held) message"
    fi
    expect_not_delivered "brand-phish@$d"
}

# (5) forged results arriving over SMTP are removed; a foreign Authentication-Results is kept.
s_forged() {
    pf_swaks "$PF_NAME" "$(port_of)" 192.0.2.10 mail.sender.example alice@sender.example \
        bob@rcpt.example "$MSG/pf_forged.eml"
    expect_queued
    [[ -n $QID ]] && pf_delivered "$QID" || return 0
    check_accept_headers "$MSG/pf_forged.eml" rsa2048 rsa-sha256
    local all
    all=$(hdr Authentication-Results)
    expect "every Authentication-Results (ours, then the foreign one)" "$all" \
        "$(ar_pass "$MSG/pf_forged.eml" rsa2048 rsa-sha256)
Authentication-Results: other.example; spf=pass smtp.mailfrom=alice@sender.example"
    if grep -aq -- '-5' <(hdr X-Spoofguard-Score); then bad "forged X-Spoofguard-Score: -5 delivered"; fi
}

# (5b) forged results in other spellings (no space after the colon, other case, folded
# authserv-id, lower-case names) are removed too; "mx.spoofguard.test.other.example" is kept.
s_forged2() {
    pf_swaks "$PF_NAME" "$(port_of)" 192.0.2.10 mail.sender.example alice@sender.example \
        bob@rcpt.example "$MSG/pf_forged2.eml"
    expect_queued
    [[ -n $QID ]] && pf_delivered "$QID" || return 0
    check_accept_headers "$MSG/pf_forged2.eml" rsa2048 rsa-sha256
    expect "every Authentication-Results (ours, then the foreign one)" "$(hdr Authentication-Results)" \
        "$(ar_pass "$MSG/pf_forged2.eml" rsa2048 rsa-sha256)
Authentication-Results: mx.spoofguard.test.other.example; dkim=pass header.d=sender.example"
}

# (10) a 350 kB signed message: Postfix sends the body in 64 kB chunks; DKIM still passes.
s_large() {
    pf_swaks "$PF_NAME" "$(port_of)" 192.0.2.10 mail.sender.example alice@sender.example \
        bob@rcpt.example "$MSG/pf_large.eml"
    expect_queued
    [[ -n $QID ]] && pf_delivered "$QID" && check_accept_headers "$MSG/pf_large.eml" rsa2048 rsa-sha256
}

# pf_set_milter_keys LINES: put LINES under [milter] of pf_inet.toml (after a backup) and reload.
pf_set_milter_keys() {
    local cfg=$WORK/cfg/pf_inet.toml
    [[ -e $cfg.orig ]] || cp "$cfg" "$cfg.orig"
    cp "$cfg.orig" "$cfg"
    "$PY" - "$cfg" "$1" <<'EOF2'
import sys
path, lines = sys.argv[1], sys.argv[2]
text = open(path).read().replace("[milter]\n", "[milter]\n" + lines + "\n", 1)
open(path, "w").write(text)
EOF2
    pf_reload
}
pf_restore_config() {
    local cfg=$WORK/cfg/pf_inet.toml
    cp "$cfg.orig" "$cfg"
    rm -f "$cfg.orig"
    pf_reload
}

# (11) max_message_bytes = 65536 (SIGHUP): the large message is delivered unverified with
# the OVERSIZE reason (oversize_action = "accept", the default), or answered 452 4.3.4
# (oversize_action = "tempfail"); then the old configuration again.
s_oversize() {
    pf_set_milter_keys 'max_message_bytes = 65536'
    pf_swaks "$PF_NAME.accept" "$PF_INET_PORT" 192.0.2.10 mail.sender.example alice@sender.example \
        bob@rcpt.example "$MSG/pf_large.eml"
    expect_queued
    if [[ -n $QID ]] && pf_delivered "$QID"; then
        expect "Authentication-Results (none for an unverified message)" \
            "$(hdr Authentication-Results)" ""
        expect "X-Spoofguard-Score" "$(hdr X-Spoofguard-Score)" "X-Spoofguard-Score: 0.0"
        expect "X-Spoofguard-Verdict" "$(hdr X-Spoofguard-Verdict)" "X-Spoofguard-Verdict: accept"
        expect "X-Spoofguard-Reasons" "$(hdr X-Spoofguard-Reasons)" \
            "X-Spoofguard-Reasons: OVERSIZE=+0.0 (larger than 65536 bytes, not verified)"
    fi
    pf_set_milter_keys $'max_message_bytes = 65536\noversize_action = "tempfail"'
    pf_swaks "$PF_NAME.tempfail" "$PF_INET_PORT" 192.0.2.10 mail.sender.example alice@sender.example \
        bob@rcpt.example "$MSG/pf_large.eml"
    expect "SMTP reply (oversize_action = tempfail)" "$REPLY" "452 4.3.4 Message too large to verify, try again later"
    expect_queue_empty
    pf_restore_config
}

# (12) six SMTP sessions at once (three legitimate, three spoofs): each judged on its own.
s_parallel() {
    local i pids=()
    for i in 1 2 3; do
        pf_swaks "$PF_NAME.pass$i" "$(port_of)" 192.0.2.10 mail.sender.example \
            alice@sender.example bob@rcpt.example "$MSG/rsa_pass.eml" >/dev/null &
        pids+=($!)
        pf_swaks "$PF_NAME.spoof$i" "$(port_of)" 198.51.100.66 mail.attacker.example \
            ceo@sender.example bob@rcpt.example "$MSG/spoof_unsigned.eml" >/dev/null &
        pids+=($!)
    done
    wait "${pids[@]}" || true
    for i in 1 2 3; do
        REPLY=$("$PY" "$INTEG/pftool.py" reply "$WORK/out/$PF_NAME.pass$i.swaks")
        QID=$("$PY" "$INTEG/pftool.py" qid "$WORK/out/$PF_NAME.pass$i.swaks")
        echo "session pass$i: $REPLY"
        expect_queued
        [[ -n $QID ]] && pf_delivered "$QID" && check_accept_headers "$MSG/rsa_pass.eml" rsa2048 rsa-sha256
        REPLY=$("$PY" "$INTEG/pftool.py" reply "$WORK/out/$PF_NAME.spoof$i.swaks")
        expect "session spoof$i" "$REPLY" "550 5.7.1 Rejected per DMARC policy for sender.example"
    done
}

# (13) SIGTERM while a message is being judged (its DNS times out): the open connection is
# finished (451 4.4.3, not the 4.7.1 of a vanished milter), then spoofguard exits; restarted.
s_sigterm_inflight() {
    local swpid mark pfmark
    mark=$(log_mark inet)
    pfmark=$(wc -l <"$WORK/log/postfix.log")
    pf_swaks "$PF_NAME" "$PF_INET_PORT" 192.0.2.50 mail.slowdns.example info@slowdns.example \
        bob@rcpt.example "$MSG/slowdns.eml" >/dev/null &
    swpid=$!
    # wait until Postfix has the message's body (the milter is then judging it)
    local i
    for ((i = 0; i < 100; i++)); do
        tail -n "+$((pfmark + 1))" "$WORK/log/postfix.log" | grep -q 'message-id=<slow@slowdns.example>' && break
        sleep 0.1
    done
    sleep 0.5
    kill -TERM "$PF_INET_PID"
    wait "$swpid" || true
    REPLY=$("$PY" "$INTEG/pftool.py" reply "$WORK/out/$PF_NAME.swaks")
    echo "swaks ($PF_NAME): $REPLY"
    expect "SMTP reply (SIGTERM during the message)" "$REPLY" \
        "451 4.4.3 Temporary DNS failure while verifying the sender, try again later"
    for ((i = 0; i < 100; i++)); do
        kill -0 "$PF_INET_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$PF_INET_PID" 2>/dev/null; then bad "spoofguard still running 10 s after the message"; fi
    log_since inet "$mark" | grep -E 'SIGTERM|message evaluated|stopped' | sed 's/^/log: /'
    log_since inet "$mark" | grep -q 'decision=tempfail' || bad "no log line for the message judged during SIGTERM"
    pf_start_milter inet || bad "restarting spoofguard (pf_inet)"
}

# (14) local submission (sendmail command -> pickup -> cleanup) goes through
# non_smtpd_milters = $smtpd_milters: the forged results are removed there too.
s_local_submission() {
    local mark out=$WORK/out/$PF_NAME.sendmail
    mark=$(log_mark inet)
    nx sendmail -C "$PF_CONF" -f alice@sender.example bob@rcpt.example \
        <"$MSG/pf_forged.eml" >"$out" 2>&1 || bad "sendmail: $(cat "$out")"
    local i line=""
    for ((i = 0; i < 300; i++)); do
        line=$(log_since inet "$mark" | grep 'message evaluated' || true)
        [[ -n $line ]] && break
        sleep 0.1
    done
    echo "log: $line"
    [[ -n $line ]] || { bad "spoofguard saw no message in 30 s (non_smtpd_milters)"; return 0; }
    QID=$(sed -n 's/.*queue_id="\([^"]*\)".*/\1/p' <<<"$line")
    pf_delivered "$QID" || return 0
    [[ $line == *'client_ip="127.0.0.1" from_domain="sender.example" spf=fail dkim=pass arc=none dmarc=pass'* ]] ||
        bad "log line: want client_ip 127.0.0.1, spf=fail (127.0.0.1 is not in sender.example's SPF), dkim=pass, dmarc=pass"
    # judged (trusted_networks = []): spf=fail for 127.0.0.1, DKIM aligns, DMARC passes
    local want
    want=$(ar_pass "$MSG/pf_forged.eml" rsa2048 rsa-sha256 | sed 's/spf=pass/spf=fail/')
    expect "every Authentication-Results (ours, then the foreign one)" "$(hdr Authentication-Results)" \
        "$want
Authentication-Results: other.example; spf=pass smtp.mailfrom=alice@sender.example"
    expect "X-Spoofguard-Verdict" "$(hdr X-Spoofguard-Verdict)" "X-Spoofguard-Verdict: accept"
    expect "X-Spoofguard-Score" "$(hdr X-Spoofguard-Score)" "X-Spoofguard-Score: 1.0"
    expect "X-Spoofguard-Reasons" "$(hdr X-Spoofguard-Reasons)" \
        "X-Spoofguard-Reasons: SPF_FAIL=+1.0 (sender.example)"
}

# (15) the default trusted_networks (loopback), by SIGHUP: a local submission (127.0.0.1) is
# not judged, only cleaned: no headers of ours, forged ones removed, the foreign one kept.
s_local_trusted() {
    local cfg=$WORK/cfg/pf_inet.toml
    cp "$cfg" "$cfg.orig"
    sed -i '/^trusted_networks = \[\]$/d' "$cfg"
    grep -q trusted_networks "$cfg" && bad "could not remove trusted_networks from $cfg"
    pf_reload
    local mark out=$WORK/out/$PF_NAME.sendmail i line=""
    mark=$(log_mark inet)
    nx sendmail -C "$PF_CONF" -f alice@sender.example bob@rcpt.example \
        <"$MSG/pf_forged.eml" >"$out" 2>&1 || bad "sendmail: $(cat "$out")"
    # not judged, so no log line: find the delivery by Postfix's log
    for ((i = 0; i < 300; i++)); do
        QID=$(grep -a 'message-id=<pf-forged@sender.example>' "$WORK/log/postfix.log" | grep -a 'cleanup' |
            tail -n 1 | sed -n 's/.*cleanup\[[0-9]*\]: \([0-9A-F]*\): .*/\1/p')
        [[ -n $QID && $QID != "${PF_LAST_LOCAL_QID:-}" ]] && break
        sleep 0.1
    done
    echo "queue id: $QID"
    if [[ -n $QID && $QID != "${PF_LAST_LOCAL_QID:-}" ]] && pf_delivered "$QID"; then
        expect "Authentication-Results (only the foreign one)" "$(hdr Authentication-Results)" \
            "Authentication-Results: other.example; spf=pass smtp.mailfrom=alice@sender.example"
        expect "X-Spoofguard-* headers" "$(hdr X-Spoofguard-Verdict; hdr X-Spoofguard-Score; hdr X-Spoofguard-Reasons)" ""
    else
        bad "no delivery of the submitted message"
    fi
    expect "spoofguard log lines 'message evaluated' (trusted: none)" \
        "$(log_since inet "$mark" | grep -c 'message evaluated' || true)" 0
    cp "$cfg.orig" "$cfg"
    rm -f "$cfg.orig"
    pf_reload
}

# (9b) SIGHUP with a broken file: refused, the old configuration stays (spoof still 550).
s_sighup_bad() {
    local cfg=$WORK/cfg/pf_inet.toml mark n i
    cp "$cfg" "$cfg.orig"
    printf '\n[policy]\nreject_dmarc_reject = "maybe"\n' >>"$cfg"
    mark=$(log_mark inet)
    kill -HUP "$PF_INET_PID"
    for ((i = 0; i < 50; i++)); do
        n=$(log_since inet "$mark" | grep -c 'reload failed, keeping the old configuration' || true)
        ((n > 0)) && break
        sleep 0.1
    done
    log_since inet "$mark" | grep 'reload' | sed 's/^/log: /'
    ((n > 0)) || bad "no 'reload failed, keeping the old configuration' 5 s after SIGHUP"
    kill -0 "$PF_INET_PID" 2>/dev/null || bad "spoofguard exited on a bad configuration file"
    pf_swaks "$PF_NAME" "$PF_INET_PORT" 198.51.100.66 mail.attacker.example \
        ceo@sender.example bob@rcpt.example "$MSG/spoof_unsigned.eml"
    expect "SMTP reply (old configuration)" "$REPLY" "550 5.7.1 Rejected per DMARC policy for sender.example"
    cp "$cfg.orig" "$cfg"
    rm -f "$cfg.orig"
    pf_reload
}

# (6) DNS timeout for the From domain: 451 4.4.3 (on_dns_error = "tempfail", the default).
s_dns_timeout() {
    pf_swaks "$PF_NAME" "$(port_of)" 192.0.2.50 mail.slowdns.example info@slowdns.example \
        bob@rcpt.example "$MSG/slowdns.eml"
    expect "SMTP reply" "$REPLY" "451 4.4.3 Temporary DNS failure while verifying the sender, try again later"
    expect_not_delivered slow@slowdns.example
    expect_queue_empty
}

# (7a) one message, three recipients: one delivery to the sink with all three, with headers.
s_multi_rcpt() {
    pf_swaks "$PF_NAME" "$(port_of)" 192.0.2.10 mail.sender.example alice@sender.example \
        bob@rcpt.example,carol@rcpt.example,dave@rcpt.example "$MSG/rsa_pass.eml"
    expect_queued
    [[ -n $QID ]] && pf_delivered "$QID" || return 0
    expect "envelope recipients at the sink" "$("$PY" "$INTEG/pftool.py" rcpts "$FILE" | sort)" \
        "$(printf '<%s@rcpt.example> ORCPT=rfc822;%s@rcpt.example\n' bob bob carol carol dave dave)"
    check_accept_headers "$MSG/rsa_pass.eml" rsa2048 rsa-sha256
    sleep 1
    expect "sink files for this message" "$("$PY" "$INTEG/pftool.py" grep-msgid "$PF_SINK" rsa-pass@sender.example | grep -c . || true)" \
        "$(($(cat "$PF/rsa_pass_count") + 1))"
}

# (7b) four messages on one SMTP connection, each judged on its own.
s_session() {
    local out=$WORK/out/$PF_NAME.session
    nx "$PY" "$INTEG/pftool.py" session "$(port_of)" 192.0.2.10 mail.sender.example \
        alice@sender.example bob@rcpt.example \
        "$MSG/rsa_pass.eml" \
        "ceo@none.example=$MSG/spoof_unsigned.eml" \
        "billing@quarantine.example=$MSG/quarantine_fail.eml" \
        "$MSG/ed_pass.eml" >"$out" 2>&1 || bad "pftool session: $(cat "$out")"
    cat "$out"
    local r1 r2 r3 r4
    { read -r r1; read -r r2; read -r r3; read -r r4; } <"$out" || true
    local q1=${r1##* } q3=${r3##* } q4=${r4##* }
    [[ $r1 =~ ^250\ 2\.0\.0\ Ok:\ queued\ as ]] || bad "message 1 (rsa_pass): $r1"
    expect "message 2 (spoof, envelope none.example)" "$r2" "550 5.7.1 Rejected per DMARC policy for sender.example"
    [[ $r3 =~ ^250\ 2\.0\.0\ Ok:\ queued\ as ]] || bad "message 3 (quarantine): $r3"
    [[ $r4 =~ ^250\ 2\.0\.0\ Ok:\ queued\ as ]] || bad "message 4 (ed_pass): $r4"
    if pf_delivered "$q1"; then check_accept_headers "$MSG/rsa_pass.eml" rsa2048 rsa-sha256; fi
    expect "queue of message 3 ($q3)" "$(pf_queue_of "$q3")" "hold"
    nx postsuper -c "$PF_CONF" -d "$q3" hold >/dev/null 2>&1 || true
    if pf_delivered "$q4"; then check_accept_headers "$MSG/ed_pass.eml" ed ed25519-sha256; fi
}

# (8) spoofguard stopped while Postfix runs: 4xx (milter_default_action = tempfail), nothing
# queued or delivered; after a restart the same message is accepted.
s_milter_down() {
    pf_stop_milter "$PF_KIND" || true
    pf_swaks "$PF_NAME.down" "$(port_of)" 192.0.2.10 mail.sender.example alice@sender.example \
        bob@rcpt.example "$MSG/ed_pass.eml"
    expect "SMTP reply with spoofguard stopped" "$REPLY" "451 4.7.1 Service unavailable - try again later"
    expect_queue_empty
    local before
    before=$("$PY" "$INTEG/pftool.py" grep-msgid "$PF_SINK" ed-pass@sender.example | grep -c . || true)
    pf_start_milter "$PF_KIND" || bad "restarting spoofguard (pf_$PF_KIND)"
    pf_swaks "$PF_NAME.up" "$(port_of)" 192.0.2.10 mail.sender.example alice@sender.example \
        bob@rcpt.example "$MSG/ed_pass.eml"
    expect_queued
    [[ -n $QID ]] && pf_delivered "$QID" && check_accept_headers "$MSG/ed_pass.eml" ed ed25519-sha256
    expect "sink files of ed_pass" "$("$PY" "$INTEG/pftool.py" grep-msgid "$PF_SINK" ed-pass@sender.example | grep -c . || true)" \
        "$((before + 1))"
}

# (9) SIGHUP reload: reject_dmarc_reject = false turns the p=reject spoof into a quarantine
# (held) on the next message; restoring the file and reloading again brings the 550 back.
pf_reload() {
    local mark n
    mark=$(log_mark inet)
    kill -HUP "$PF_INET_PID"
    for _ in $(seq 50); do
        n=$(log_since inet "$mark" | grep -c 'configuration reloaded' || true)
        ((n > 0)) && return 0
        sleep 0.1
    done
    bad "no 'configuration reloaded' in pf_inet.log 5 s after SIGHUP"
}
s_sighup() {
    local cfg=$WORK/cfg/pf_inet.toml
    cp "$cfg" "$cfg.orig"
    printf '\n[policy]\nreject_dmarc_reject = false\n' >>"$cfg"
    pf_reload
    pf_swaks "$PF_NAME.changed" "$PF_INET_PORT" 198.51.100.66 mail.attacker.example \
        ceo@sender.example bob@rcpt.example "$MSG/spoof_unsigned.eml"
    expect_queued
    if [[ -n $QID ]]; then
        expect "queue of $QID (reject_dmarc_reject = false)" "$(pf_queue_of "$QID")" "hold"
        pf_held_headers "$QID"
        check_held_headers ceo@sender.example sender.example reject
        nx postsuper -c "$PF_CONF" -d "$QID" hold >/dev/null 2>&1 || true
    fi
    cp "$cfg.orig" "$cfg"
    rm -f "$cfg.orig"
    pf_reload
    pf_swaks "$PF_NAME.restored" "$PF_INET_PORT" 198.51.100.66 mail.attacker.example \
        ceo@sender.example bob@rcpt.example "$MSG/spoof_unsigned.eml"
    expect "SMTP reply after restoring" "$REPLY" "550 5.7.1 Rejected per DMARC policy for sender.example"
}

# ------------------------------------------------------------------ run
for PF_KIND in inet unix; do
    "$PY" "$INTEG/pftool.py" grep-msgid "$PF_SINK" rsa-pass@sender.example | grep -c . >"$PF/rsa_pass_count" || true
    pf_run "pf_${PF_KIND}_1_rsa_pass" s_pass rsa_pass rsa2048 rsa-sha256
    pf_run "pf_${PF_KIND}_1_ed25519_pass" s_pass ed_pass ed ed25519-sha256
    pf_run "pf_${PF_KIND}_2_spoof_reject" s_spoof
    pf_run "pf_${PF_KIND}_3_quarantine_hold" s_quarantine
    pf_run "pf_${PF_KIND}_4_brand_phish" s_brand_phish
    pf_run "pf_${PF_KIND}_5_forged_results" s_forged
    pf_run "pf_${PF_KIND}_5_forged_other_spellings" s_forged2
    pf_run "pf_${PF_KIND}_10_large_body" s_large
    pf_run "pf_${PF_KIND}_12_parallel_sessions" s_parallel
    "$PY" "$INTEG/pftool.py" grep-msgid "$PF_SINK" rsa-pass@sender.example | grep -c . >"$PF/rsa_pass_count" || true
    pf_run "pf_${PF_KIND}_7_multi_rcpt" s_multi_rcpt
    pf_run "pf_${PF_KIND}_7_one_session" s_session
    pf_run "pf_${PF_KIND}_8_milter_down" s_milter_down
done
PF_KIND=inet
pf_run pf_inet_9_sighup s_sighup
pf_run pf_inet_11_oversize s_oversize
pf_run pf_inet_9_sighup_bad_file s_sighup_bad
pf_run pf_inet_14_local_submission s_local_submission
PF_LAST_LOCAL_QID=$(grep -a 'message-id=<pf-forged@sender.example>' "$WORK/log/postfix.log" | grep -a cleanup |
    tail -n 1 | sed -n 's/.*cleanup\[[0-9]*\]: \([0-9A-F]*\): .*/\1/p')
pf_run pf_inet_15_local_trusted s_local_trusted
# DNS timeouts last (some resolvers mark a server dead after a timeout).
pf_run pf_inet_6_dns_timeout s_dns_timeout
pf_run pf_inet_13_sigterm_inflight s_sigterm_inflight
