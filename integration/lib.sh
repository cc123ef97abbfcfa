# shellcheck shell=bash
# Shared by the integration scripts and benches/run-milter-bench.sh (sourced, not run): root
# and sudo, package installs, release builds, and the one home of the private NSD and of the
# network namespaces. integration/opslib.py starts NSD through the entry point at the end:
#   bash integration/lib.sh nsd-exec DIR ZONESDIR PORT [LOGFILE [VERBOSITY]]
#
# Installs: a script lists every command and Python module it uses with need_cmd / need_py,
# then calls install_needed once, before the first use. .ci/check-installs.sh checks that order.

export PATH="$PATH:/usr/sbin:/sbin"

# ------------------------------------------------------------------ root
# reexec_as_root "$@": as root, nothing; otherwise run the calling script again through sudo,
# keeping PATH, CARGO_HOME and RUSTUP_HOME so that cargo still finds the user's toolchain (sudo
# would reset them). So `bash integration/test-all.sh` works as root and as a sudo user.
reexec_as_root() {
    [[ $(id -u) -eq 0 ]] && return 0
    if ! command -v sudo >/dev/null 2>&1; then
        echo "run this as root (it installs Debian packages and creates network namespaces)" >&2
        echo "0 passed, 1 failed"
        exit 1
    fi
    exec sudo --preserve-env env PATH="$PATH" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" \
        RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" bash "$0" "$@"
}

# ------------------------------------------------------------------ installs
declare -a SG_WANTS=()
# need_cmd CMD PKG: the script runs CMD (a name on PATH or an absolute path), from Debian's PKG.
need_cmd() { SG_WANTS+=("cmd $1 $2"); }
# need_py MODULE PKG: the script imports MODULE in Debian's /usr/bin/python3, from PKG.
need_py() { SG_WANTS+=("py $1 $2"); }
sg_have() {
    case $1 in
        cmd) command -v "$2" >/dev/null 2>&1 ;;
        py) [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c "import $2" 2>/dev/null ;;
    esac
}

# install_needed: installs (as root, with apt-get) the packages of every need_cmd / need_py
# entry that is missing. Returns 1 when something is still missing afterwards, listed in the
# array MISSING as "NAME (Debian package PKG)"; the caller reports it in its own way.
install_needed() {
    local w kind name pkg
    local -a pkgs=()
    for w in "${SG_WANTS[@]}"; do
        read -r kind name pkg <<<"$w"
        sg_have "$kind" "$name" && continue
        pkgs+=("$pkg")
        [[ $kind == py && ! -x /usr/bin/python3 ]] && pkgs+=(python3)
    done
    if ((${#pkgs[@]} > 0)); then
        mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
        echo "installing: ${pkgs[*]}"
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
            apt_install "${pkgs[@]}"
        else
            echo "not root or no apt-get: cannot install ${pkgs[*]}"
        fi
    fi
    MISSING=()
    for w in "${SG_WANTS[@]}"; do
        read -r kind name pkg <<<"$w"
        sg_have "$kind" "$name" || MISSING+=("$name (Debian package $pkg)")
    done
    ((${#MISSING[@]} == 0))
}

# apt_install PKG...: apt-get update and install, quietly (the tail of the log is shown).
# Postfix: no system-wide configuration, and no service started by any package (the private
# instance of integration/postfix.sh is the only Postfix we run).
apt_install() {
    local log own_policy_rc='' sys_master
    log=$(mktemp)
    export DEBIAN_FRONTEND=noninteractive
    if [[ " $* " == *" postfix "* ]]; then
        echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    fi
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\n# integration/lib.sh: no service starts during apt-get install\nexit 101\n' \
            >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        own_policy_rc=1
    fi
    timeout 600 apt-get update -qq </dev/null >"$log" 2>&1 || true
    timeout 900 apt-get install -y -qq --no-install-recommends "$@" </dev/null >>"$log" 2>&1 || true
    if [[ -n $own_policy_rc ]]; then rm -f /usr/sbin/policy-rc.d; fi
    # Should a system-wide Postfix have started anyway, stop that master by its PID.
    sys_master=$(tr -d ' ' 2>/dev/null </var/spool/postfix/pid/master.pid || true)
    if [[ -n $sys_master ]] && [[ $(cat "/proc/$sys_master/comm" 2>/dev/null) == master ]]; then
        echo "stopping the system Postfix master the package started (pid $sys_master)"
        kill "$sys_master" || true
    fi
    tail -n 5 "$log" || true
    rm -f "$log"
}

# ------------------------------------------------------------------ builds
# Builds target/release/spoofguard and the milter_load example unless SPOOFGUARD_BIN and
# MILTER_LOAD_BIN name other builds; on failure prints the "0 passed, 1 failed" line and exits.
# Two builds: the example's dev-dependencies must not change the features of the spoofguard
# binary that integration/run.sh and package.sh use. Needs ROOT.
build_release_and_load() {
    if [[ -z ${SPOOFGUARD_BIN:-} || -z ${MILTER_LOAD_BIN:-} ]]; then
        (cd "$ROOT" && cargo build --release --locked --quiet --bin spoofguard &&
            cargo build --release --locked --quiet --example milter_load) ||
            { echo "cargo build --release failed"; echo "0 passed, 1 failed"; exit 1; }
    fi
}

# ------------------------------------------------------------------ network namespace
# netns_create NAME: a network namespace with its loopback up, whose /etc/resolv.conf (as
# `ip netns exec NAME` shows it to every process) names 127.0.0.1:53, where nsd_start puts NSD.
# Returns non-zero when a step fails; call netns_destroy NAME in any case.
netns_create() {
    ip netns add "$1" || return 1
    mkdir -p "/etc/netns/$1"
    echo "nameserver 127.0.0.1" >"/etc/netns/$1/resolv.conf"
    ip -n "$1" link set lo up
}
# netns_destroy NAME: deletes the namespace and /etc/netns/NAME (and /etc/netns when empty).
netns_destroy() {
    ip netns del "$1" 2>/dev/null || true
    rm -rf "/etc/netns/${1:?}"
    rmdir /etc/netns 2>/dev/null || true # only when no other namespace uses it
}

# ------------------------------------------------------------------ NSD
# nsd_conf DIR ZONESDIR PORT [LOGFILE [VERBOSITY [SERVER_LINE...]]]: writes DIR/nsd.conf, an
# NSD on 127.0.0.1:PORT (IPv4 only, not daemonized, no user change or chroot, its state files
# in DIR) serving ZONESDIR/root.zone as the root zone ".", so every name outside the test data
# gets an authoritative NXDOMAIN. LOGFILE empty: NSD logs to its stderr. SERVER_LINEs are
# added to the server: clause as they are.
nsd_conf() {
    local dir=$1 zones=$2 port=$3 logfile=${4:-} verbosity=${5:-1} line
    shift $(($# < 5 ? $# : 5))
    mkdir -p "$dir"
    {
        cat <<EOF
server:
    ip-address: 127.0.0.1
    port: $port
    do-ip4: yes
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "$zones"
    pidfile: "$dir/nsd.pid"
    database: ""
    zonelistfile: "$dir/zone.list"
    xfrdfile: "$dir/xfrd.state"
    xfrdir: "$dir"
EOF
        if [[ -n $logfile ]]; then echo "    logfile: \"$logfile\""; fi
        cat <<EOF
    server-count: 1
    verbosity: $verbosity
    hide-version: yes
EOF
        for line in "$@"; do echo "    $line"; done
        cat <<EOF
remote-control:
    control-enable: no
zone:
    name: "."
    zonefile: "root.zone"
EOF
    } >"$dir/nsd.conf"
}

# nsd_start OUT NETNS DIR ZONESDIR PORT [LOGFILE [VERBOSITY [SERVER_LINE...]]]: writes the
# configuration (nsd_conf), checks it with nsd-checkconf and starts NSD in the background, in
# network namespace NETNS (empty: the host's), its output to the file OUT. Sets NSD_PID (NSD's
# own PID: `ip netns exec` execs it); the caller stops it. Returns 1 when the check fails.
nsd_start() {
    local out=$1 ns=$2
    shift 2
    nsd_conf "$@"
    nsd-checkconf "$1/nsd.conf" || return 1
    if [[ -n $ns ]]; then
        ip netns exec "$ns" nsd -d -c "$1/nsd.conf" >"$out" 2>&1 </dev/null &
    else
        nsd -d -c "$1/nsd.conf" >"$out" 2>&1 </dev/null &
    fi
    NSD_PID=$!
}

# ------------------------------------------------------------------ entry point
# bash integration/lib.sh nsd-exec DIR ZONESDIR PORT [LOGFILE [VERBOSITY]]: nsd_conf, then
# exec NSD in the foreground, so that the caller's process is NSD itself (opslib.Procs).
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    case ${1:-} in
        nsd-exec)
            shift
            nsd_conf "$@"
            exec nsd -d -c "$1/nsd.conf"
            ;;
        *)
            echo "usage: bash integration/lib.sh nsd-exec DIR ZONESDIR PORT [LOGFILE [VERBOSITY]]" >&2
            exit 2
            ;;
    esac
fi
