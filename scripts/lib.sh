# Shared helpers for scripts/test and scripts/tscns. Sourced, not run.
# shellcheck shell=bash

# Debian packages: the middleware the tests drive (see shared/testbed.md) and what builds pcsc-sys.
TSCNS_BUILD_PACKAGES=(libpcsclite-dev pkg-config)
TSCNS_TEST_PACKAGES=(pcscd libpcsclite-dev pkg-config vsmartcard-vpcd softhsm2 opensc opensc-pkcs11 pcsc-tools openssl libnss3-tools gnutls-bin libengine-pkcs11-openssl curl)

# Installs whichever of the given Debian packages are missing (apt-get update first).
tscns_install_packages() {
    local missing=() p sudo=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "all packages present: $*"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; return 1; }
        sudo="sudo"
    fi
    echo "installing: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# True when a TCP port on loopback is listening (reads /proc, needs no extra tools).
tscns_port_listening() {
    local hex
    hex=$(printf '%04X' "$1")
    grep -qE "^ *[0-9]+: [0-9A-F]+:${hex} [0-9A-F]+:[0-9A-F]+ 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

TSCNS_PCSCD_PID=""
TSCNS_PCSCD_SOCKET="/run/pcscd/pcscd.comm"

# Starts pcscd in the foreground as our child unless one already runs; waits (bounded) for its
# socket and for vpcd's port 35963. Sets TSCNS_PCSCD_PID only when we started it.
tscns_start_pcscd() {
    if pgrep -x pcscd >/dev/null 2>&1; then
        echo "reusing the pcscd that is already running (pid $(pgrep -x pcscd | head -n1))"
    else
        # A pcscd killed hard leaves its socket and pid file behind; pcscd then refuses to start.
        rm -f "$TSCNS_PCSCD_SOCKET" /run/pcscd/pcscd.pid
        mkdir -p /run/pcscd
        local log="${TMPDIR:-/tmp}/tscns-pcscd.$$.log"
        pcscd -f >"$log" 2>&1 &
        TSCNS_PCSCD_PID=$!
        echo "started pcscd (pid $TSCNS_PCSCD_PID, log $log)"
    fi
    local i
    for i in $(seq 1 100); do
        if [ -S "$TSCNS_PCSCD_SOCKET" ] && tscns_port_listening 35963; then
            echo "pcscd ready, vpcd listening on 127.0.0.1:35963"
            return 0
        fi
        if [ -n "$TSCNS_PCSCD_PID" ] && ! kill -0 "$TSCNS_PCSCD_PID" 2>/dev/null; then
            echo "pcscd exited early; its log:" >&2
            cat "${TMPDIR:-/tmp}/tscns-pcscd.$$.log" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    echo "pcscd did not become ready in 10 s (socket $TSCNS_PCSCD_SOCKET, vpcd port 35963)" >&2
    return 1
}

# Stops the pcscd we started, by PID (bounded wait, then SIGKILL).
tscns_stop_pcscd() {
    [ -n "$TSCNS_PCSCD_PID" ] || return 0
    if kill -0 "$TSCNS_PCSCD_PID" 2>/dev/null; then
        kill "$TSCNS_PCSCD_PID" 2>/dev/null || true
        local i
        for i in $(seq 1 50); do
            kill -0 "$TSCNS_PCSCD_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$TSCNS_PCSCD_PID" 2>/dev/null || true
        wait "$TSCNS_PCSCD_PID" 2>/dev/null || true
        echo "stopped pcscd (pid $TSCNS_PCSCD_PID)"
    fi
    TSCNS_PCSCD_PID=""
}

# The workspace's package names, one a line (from cargo metadata, so a new crate is never forgotten).
tscns_workspace_crates() {
    cargo metadata --locked --no-deps --format-version 1 |
        python3 -c 'import json, sys; print("\n".join(p["name"] for p in json.load(sys.stdin)["packages"]))'
}
