#!/bin/bash
# Run tools/mininet/run.py inside a throw-away sandbox; arguments go to run.py.
#
#   sudo tools/mininet/run-sandboxed.sh [--hypervisors 3] [--vms 2] [--networks 2] [--cli]
#
# Mininet's cleanup (on any error or Ctrl-C) kills processes by name machine-wide,
# deletes every OVS bridge and /tmp/*.log. Other OVS instances and services share this
# machine, so mininet only ever runs in a private network + PID + mount namespace with
# its own /tmp and its own ovsdb-server/ovs-vswitchd (see sandbox-init.sh, docs/mininet.md).
#
# Environment: VNET_MN_TIMEOUT (seconds, default 100) bounds the run inside the sandbox;
# VNET_MN_KEEP=1 keeps the work directory (logs) even on success.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
python=${VNET_PYTHON:-$repo/.venv/bin/python}
timeout_s=${VNET_MN_TIMEOUT:-100}

if [ "$(id -u)" != 0 ]; then
    echo "run-sandboxed.sh: needs root (namespaces, Open vSwitch)" >&2
    exit 2
fi
# mininet is a Debian package for the system python; find its package directory.
if ! mn_pkg=$(/usr/bin/python3 -c 'import mininet, os; print(os.path.dirname(mininet.__file__))' \
        2>/dev/null) || ! command -v mnexec >/dev/null; then
    echo "run-sandboxed.sh: mininet is not installed (apt-get install -y mininet)" >&2
    exit 3
fi

prefix=vmn$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
# Outside /tmp: the sandbox hides the real /tmp, and logs must survive the sandbox.
work=/run/vnet-mn/$prefix
mkdir -p "$work/tmp" "$work/pylib"
ln -s "$mn_pkg" "$work/pylib/mininet"

rc=1
cleanup() {
    ip netns del "$prefix" 2>/dev/null || true
    if [ "$rc" = 0 ] && [ "${VNET_MN_KEEP:-}" != 1 ]; then
        rm -rf --one-file-system "$work"
        rmdir /run/vnet-mn 2>/dev/null || true  # only if no other run is using it
    else
        echo "run-sandboxed.sh: logs kept in $work (logs/, ovs/); remove with rm -rf $work" >&2
    fi
}
trap cleanup EXIT
ip netns add "$prefix"
echo "run-sandboxed.sh: sandbox $prefix, work directory $work"

# --kill-child: if unshare itself is killed, the sandbox's PID 1 gets SIGKILL, and
# with it everything in the PID namespace.
set +e
ip netns exec "$prefix" unshare --pid --fork --kill-child --mount --mount-proc \
    --propagation private "$here/sandbox-init.sh" "$work" "$timeout_s" \
    "$python" "$here/run.py" "$@"
rc=$?
exit "$rc"
