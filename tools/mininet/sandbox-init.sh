#!/bin/bash
# PID 1 of the mininet sandbox (started by run-sandboxed.sh through unshare).
# Usage: sandbox-init.sh WORKDIR TIMEOUT_S COMMAND...
#
# We are in a private network, PID and mount namespace. Hiding the real /tmp behind
# WORKDIR/tmp means mininet's error-path `rm /tmp/*.log` only reaches ours; the PID
# namespace means its `killall`/`pkill -f` by name only reach ours; the network
# namespace holds every veth, tap and bridge it makes. When this shell exits, the
# kernel kills whatever is left in the PID namespace, so nothing outlives the run.
set -u
work=$1 timeout_s=$2
shift 2

# A checkout that lives under /tmp (CI clones often do) must stay visible: carry it
# into the private /tmp at the same path before that /tmp hides the real one.
repo=$(cd "$(dirname "$0")/../.." && pwd)
case "$repo" in
    /tmp/*)
        mkdir -p "$work/tmp/${repo#/tmp/}"
        mount --bind "$repo" "$work/tmp/${repo#/tmp/}" || exit 125
        ;;
esac
# Propagation is private (unshare): these mounts are invisible outside. --rbind keeps
# the carried checkout mounted inside the new /tmp.
mount --rbind "$work/tmp" /tmp || exit 125
# vna listens on 127.0.0.1 and the switches connect there: a new netns has lo down.
ip link set lo up || exit 125

export VNET_MN_WORKDIR=$work
# pylib holds only a link to mininet's package, so the venv's interpreter finds it
# without the rest of the system's dist-packages shadowing venv packages.
export PYTHONPATH=$work/pylib${PYTHONPATH:+:$PYTHONPATH}
export PATH=$PATH:/usr/sbin:/sbin

# Not exec: this shell must stay PID 1 so that its exit tears the namespace down.
# --foreground keeps COMMAND in our process group, so a Ctrl-C reaches it and
# mininet's own stop runs; SIGINT (not TERM) on timeout does the same.
timeout --foreground -s INT -k 10 "$timeout_s" "$@"
rc=$?
[ "$rc" = 124 ] && echo "sandbox: timed out after ${timeout_s}s" >&2
exit "$rc"
