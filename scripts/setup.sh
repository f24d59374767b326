#!/usr/bin/env bash
# Prepare a Debian (bookworm) machine for wakame-vnet development and the e2e tests.
# Run as root; safe to run again (each step checks first and says what it does).
#
#   - system packages (Open vSwitch, ethtool, iperf3, tcpdump, ping, iproute2, chromium for
#     the topology page's browser test), only if missing
#   - MariaDB: installed and started only if nothing answers on 127.0.0.1:3306
#   - database `vnet_test` and a user vnet/vnet allowed on vnet* databases over TCP
#     (a fresh Debian MariaDB lets root in only over the unix socket)
#   - the virtualenv .venv with `pip install -e '.[test]'`, skipped when the packaging
#     files did not change since the last install
#
# It never starts Open vSwitch: every test starts private OVS instances of its own.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VNET_VENV:-$REPO/.venv}
DB_NAME=${VNET_TEST_DB_NAME:-vnet_test}
DB_USER=vnet
DB_PASSWORD=vnet
PACKAGES=(openvswitch-switch ethtool iperf3 tcpdump iputils-ping iproute2 mininet isc-dhcp-client busybox
          traceroute iputils-tracepath dnsutils dnsmasq-base netcat-openbsd
          chromium)

log() { echo "==> $*"; }
die() { echo "setup.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (network namespaces, OVS and apt need it)"

POLICY=/usr/sbin/policy-rc.d
POLICY_OURS=0
cleanup() { if [ "$POLICY_OURS" = 1 ]; then rm -f "$POLICY"; fi; }
trap cleanup EXIT

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

apt_install() {
    local missing=() p
    for p in "$@"; do installed "$p" || missing+=("$p"); done
    if [ ${#missing[@]} -eq 0 ]; then
        log "packages already installed: $*"
        return
    fi
    # Keep apt from starting a machine-wide OVS (tests run their own instances). Only
    # when no policy exists: an existing one belongs to the machine's owner.
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\nfor a; do [ "$a" = openvswitch-switch ] && exit 101; done\nexit 0\n' >"$POLICY"
        chmod 755 "$POLICY"
        POLICY_OURS=1
    fi
    log "installing: ${missing[*]}"
    # DPkg::Lock::Timeout waits for another apt run to finish instead of failing.
    local apt=(apt-get -y -q -o DPkg::Lock::Timeout=600)
    if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "${missing[@]}"; then
        log "install failed; refreshing package lists and retrying"
        "${apt[@]}" update
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "${missing[@]}"
    fi
}

mariadb_answers() { timeout 2 bash -c '</dev/tcp/127.0.0.1/3306' 2>/dev/null; }

# --- system packages ----------------------------------------------------------------------
apt_install "${PACKAGES[@]}"

# --- MariaDB ------------------------------------------------------------------------------
if mariadb_answers; then
    log "a database server answers on 127.0.0.1:3306; using it"
else
    [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server
    if ! mariadb_answers; then
        log "starting mariadbd"
        install -d -o mysql -g mysql /run/mysqld
        # Without --user=mysql mariadbd exits at once (as root), without a message.
        start-stop-daemon --start --background --make-pidfile \
            --pidfile /run/mysqld/vnet-setup-mariadbd.pid \
            --exec /usr/sbin/mariadbd -- --user=mysql
        for _ in $(seq 60); do mariadb_answers && break; sleep 0.5; done
        mariadb_answers || die "mariadbd did not come up on 127.0.0.1:3306"
    fi
fi
command -v mysql >/dev/null || apt_install mariadb-client

# Root over TCP with no password (some provided servers), else over the unix socket
# (Debian's default unix_socket authentication for root).
if mysql --protocol=tcp -h127.0.0.1 -uroot -e 'SELECT 1' >/dev/null 2>&1; then
    ADMIN=(mysql --protocol=tcp -h127.0.0.1 -uroot)
elif mysql -uroot -e 'SELECT 1' >/dev/null 2>&1; then
    ADMIN=(mysql -uroot)
else
    die "cannot log in to MariaDB as root (tried 127.0.0.1 and the unix socket)"
fi
log "database $DB_NAME and user $DB_USER (created if missing)"
"${ADMIN[@]}" <<SQL
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL PRIVILEGES ON \`vnet%\`.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`vnet%\`.* TO '$DB_USER'@'localhost';
SQL
mysql --protocol=tcp -h127.0.0.1 -u"$DB_USER" -p"$DB_PASSWORD" -e "USE \`$DB_NAME\`" ||
    die "user $DB_USER cannot reach $DB_NAME over TCP"

# --- Python virtualenv --------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
    log "creating virtualenv $VENV"
    python3 -m venv "$VENV"
fi

PACKAGING=()
for f in setup.cfg pyproject.toml setup.py; do
    if [ -f "$REPO/$f" ]; then PACKAGING+=("$REPO/$f"); fi
done
if [ ${#PACKAGING[@]} -eq 0 ]; then
    log "no setup.cfg/pyproject.toml yet: skipping pip install"
else
    STAMP=$VENV/.vnet-setup-stamp
    HASH=$(cat "${PACKAGING[@]}" <("$VENV/bin/python" -V) | sha256sum | cut -d' ' -f1)
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then
        log "python packages up to date (packaging files unchanged)"
    else
        log "pip install -e '.[test]' into $VENV"
        # compat mode puts the checkout itself on sys.path: packages added later import
        # without reinstalling.
        "$VENV/bin/pip" install -q -e "$REPO[test]" --config-settings editable_mode=compat
        echo "$HASH" >"$STAMP"
    fi
fi

URL="mysql+pymysql://$DB_USER:$DB_PASSWORD@127.0.0.1:3306/$DB_NAME?charset=utf8mb4"
log "done. Test database URL:"
echo "    $URL"
log "Open vSwitch was not started: the tests start their own instances."
