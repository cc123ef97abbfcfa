# Shared by integration/interop.sh and integration/soak.sh (sourced, not run).
# Needs ROOT and PY set, and the array `need` holding the Debian packages found missing.

# Installs the packages in `need` when there are any (as root, with apt-get).
install_needed() {
    command -v nsd >/dev/null || need+=(nsd)
    command -v dknewkey >/dev/null || need+=(python3-dkim)
    if ((${#need[@]} > 0)); then
        echo "installing: ${need[*]}"
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq </dev/null >/dev/null 2>&1 || true
            apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null >/dev/null 2>&1 || true
        fi
    fi
}

# Builds target/release/spoofguard and the milter_load example unless SPOOFGUARD_BIN and
# MILTER_LOAD_BIN name other builds; on failure prints the "0 passed, 1 failed" line and exits.
# Two builds: the example's dev-dependencies must not change the features of the spoofguard
# binary that integration/run.sh and package.sh use.
build_release_and_load() {
    if [[ -z ${SPOOFGUARD_BIN:-} || -z ${MILTER_LOAD_BIN:-} ]]; then
        (cd "$ROOT" && cargo build --release --locked --quiet --bin spoofguard &&
            cargo build --release --locked --quiet --example milter_load) ||
            { echo "cargo build --release failed"; echo "0 passed, 1 failed"; exit 1; }
    fi
}
