# Shared helpers for scripts/test and scripts/tscns. Sourced, not run.
# shellcheck shell=bash

# Debian packages: the middleware the tests drive (see shared/testbed.md) and what builds pcsc-sys.
TSCNS_BUILD_PACKAGES=(libpcsclite-dev pkg-config)
TSCNS_TEST_PACKAGES=(pcscd libpcsclite-dev pkg-config vsmartcard-vpcd softhsm2 opensc opensc-pkcs11 pcsc-tools openssl libnss3-tools gnutls-bin libengine-pkcs11-openssl curl postgresql poppler-utils firefox-esr chromium chromium-driver fonts-dejavu-core)

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

# The accessibility checker the portal's browser test injects: npm package axe-core, at one pinned
# version, under the cargo target directory (not in the repository). Exports TSCNS_AXE_CORE_JS.
TSCNS_AXE_CORE_VERSION="4.14.1"
tscns_install_axe_core() {
    local dir="${CARGO_TARGET_DIR:-$PWD/target}/npm"
    local js="$dir/node_modules/axe-core/axe.min.js"
    if ! grep -qs "\"version\": \"$TSCNS_AXE_CORE_VERSION\"" "$dir/node_modules/axe-core/package.json"; then
        command -v npm >/dev/null || tscns_install_packages npm
        mkdir -p "$dir"
        npm install --no-save --no-audit --no-fund --prefix "$dir" "axe-core@$TSCNS_AXE_CORE_VERSION"
    fi
    [ -s "$js" ] || { echo "axe-core was not installed at $js" >&2; return 1; }
    export TSCNS_AXE_CORE_JS="$js"
    echo "axe-core $TSCNS_AXE_CORE_VERSION at $js"
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

TSCNS_POSTGRES_PID=""
TSCNS_POSTGRES_DIR=""

# The newest PostgreSQL server binaries Debian installed (postgresql-NN), or nothing.
tscns_postgres_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$d" ] && [ -x "$d/postgres" ] && echo "$d"
}

# Starts a private PostgreSQL cluster for the tests: its own data directory under $TMPDIR, a free
# loopback port, trust authentication for loopback only, no Unix socket in a shared place. Run as
# the `postgres` user when we are root (initdb refuses root). Bounded wait for pg_isready; exports
# TSCNS_TEST_POSTGRES_URL and sets TSCNS_POSTGRES_PID (the postmaster's, from postmaster.pid).
tscns_start_postgres() {
    local bin port i as=()
    bin=$(tscns_postgres_bindir) || { echo "PostgreSQL server not installed (apt-get install postgresql)" >&2; return 1; }
    TSCNS_POSTGRES_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tscns-postgres.XXXXXX")
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$TSCNS_POSTGRES_DIR"
        as=(runuser -u postgres --)
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if ! "${as[@]}" "$bin/initdb" -D "$TSCNS_POSTGRES_DIR/data" -U postgres --auth=trust \
            --encoding=UTF8 --locale=C >"$TSCNS_POSTGRES_DIR/initdb.log" 2>&1; then
        echo "initdb failed; its log:" >&2
        cat "$TSCNS_POSTGRES_DIR/initdb.log" >&2
        return 1
    fi
    "${as[@]}" "$bin/postgres" -D "$TSCNS_POSTGRES_DIR/data" -h 127.0.0.1 -p "$port" \
        -k "$TSCNS_POSTGRES_DIR" -c fsync=off -c max_connections=300 \
        >"$TSCNS_POSTGRES_DIR/server.log" 2>&1 &
    local launcher=$!
    for i in $(seq 1 150); do
        if [ -z "$TSCNS_POSTGRES_PID" ] && [ -s "$TSCNS_POSTGRES_DIR/data/postmaster.pid" ]; then
            TSCNS_POSTGRES_PID=$(head -n 1 "$TSCNS_POSTGRES_DIR/data/postmaster.pid")
        fi
        if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1; then
            export TSCNS_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
            echo "started PostgreSQL (pid $TSCNS_POSTGRES_PID, $TSCNS_TEST_POSTGRES_URL, data $TSCNS_POSTGRES_DIR)"
            return 0
        fi
        if ! kill -0 "$launcher" 2>/dev/null; then
            echo "PostgreSQL exited early; its log:" >&2
            cat "$TSCNS_POSTGRES_DIR/server.log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "PostgreSQL did not accept connections in 15 s on 127.0.0.1:$port; its log:" >&2
    cat "$TSCNS_POSTGRES_DIR/server.log" >&2
    tscns_stop_postgres
    return 1
}

# Stops the cluster tscns_start_postgres started, by PID (fast shutdown, bounded wait, then
# SIGKILL), and removes its data directory.
tscns_stop_postgres() {
    if [ -n "$TSCNS_POSTGRES_PID" ] && kill -0 "$TSCNS_POSTGRES_PID" 2>/dev/null; then
        kill -INT "$TSCNS_POSTGRES_PID" 2>/dev/null || true
        local i
        for i in $(seq 1 100); do
            kill -0 "$TSCNS_POSTGRES_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$TSCNS_POSTGRES_PID" 2>/dev/null || true
        echo "stopped PostgreSQL (pid $TSCNS_POSTGRES_PID)"
    fi
    TSCNS_POSTGRES_PID=""
    if [ -n "$TSCNS_POSTGRES_DIR" ]; then
        rm -rf "$TSCNS_POSTGRES_DIR"
        TSCNS_POSTGRES_DIR=""
    fi
}

# The workspace's package names, one a line (from cargo metadata, so a new crate is never forgotten).
tscns_workspace_crates() {
    cargo metadata --locked --no-deps --format-version 1 |
        python3 -c 'import json, sys; print("\n".join(p["name"] for p in json.load(sys.stdin)["packages"]))'
}
