"""Real DHCP clients in a VM namespace: Debian's `dhclient` (isc-dhcp-client) and busybox
`udhcpc`, each kept running in the foreground so it renews, with every file it writes in
the VM's run directory (lease, pid, config, the events its script saw).

Nothing of the host is touched: the clients run under `ip netns exec` in the VM's
namespace; dhclient gets `-cf/-lf/-pf` in the run directory and a wrapper `-sf` script
that logs each event, then hands it to Debian's `/sbin/dhclient-script` (which sets the
address, MTU and option 3 route; its rfc3442 exit hook sets option 121's routes) with
the DNS options removed, so it never writes a resolv.conf.  udhcpc configures nothing
itself: its `-s` script here applies address, MTU and routes (121 over 3, RFC 3442).
Both are stopped by pid on `stop()` (and with the VM's namespace on lab close).
"""

from __future__ import annotations

import signal
import subprocess
import time

from lab.hosts import Lab, Vm
from lab.proc import terminate

# Each event: one file <seq>.<reason>.env of KEY=VALUE lines, seq = nanoseconds.
_LOG_EVENT = '''d={dir}/events; mkdir -p "$d"
f="$d/$(date +%s%N).{reason}.env"
env | grep -E '^[a-z]' | sort > "$f.tmp" && mv "$f.tmp" "$f"  # the clients' own vars
'''

DHCLIENT_SCRIPT = '''#!/bin/sh
{log}
# no resolv.conf: the DNS options were logged above and are not applied
unset new_domain_name_servers new_domain_name new_domain_search old_domain_name_servers
exec /sbin/dhclient-script "$@"
'''

DHCLIENT_CONF = '''option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers,
        interface-mtu, rfc3442-classless-static-routes;
timeout 20;
initial-interval 1;
{extra}
'''

UDHCPC_SCRIPT = '''#!/bin/sh
{log}
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr replace "$ip/${{mask:-24}}" dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    if [ -n "$staticroutes" ]; then            # option 121 wins over option 3 (RFC 3442)
      set -- $staticroutes
      while [ $# -ge 2 ]; do ip -4 route replace "$1" via "$2" dev "$interface"; shift 2; done
    elif [ -n "$router" ]; then
      ip -4 route replace default via "${{router%% *}}" dev "$interface"
    fi ;;
esac
exit 0
'''


class DhcpClient:
    """A client process in `vm` and the events its script logged."""

    name = "client"

    def __init__(self, lab: Lab, vm: Vm) -> None:
        self.vm = vm
        self.dir = vm.dir / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        lab.on_close(self.stop)

    def _log_snippet(self, reason_var: str) -> str:
        return _LOG_EVENT.format(dir=self.dir, reason=reason_var)

    def _start(self, argv: list[str]) -> None:
        log = open(self.dir / f"{self.name}.log", "ab")
        self.proc = self.vm.netns.popen(*argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def events(self) -> list[tuple[str, dict[str, str]]]:
        """(reason, environment) of each script call so far, oldest first."""
        out = []
        paths = (self.dir / "events").glob("*.env")
        for path in sorted(paths, key=lambda p: int(p.name.split(".")[0])):
            env = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
            out.append((path.name.split(".")[1], env))
        return out

    def wait_event(self, reasons: set[str], after: int = 0, timeout: float = 20.0
                   ) -> dict[str, str]:
        """The environment of the first event with one of `reasons` after the first
        `after` events; raises on timeout (with the client's log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for reason, env in self.events()[after:]:
                if reason in reasons:
                    return env
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        log = (self.dir / f"{self.name}.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"{self.name} in {self.vm.name}: no {sorted(reasons)} event "
                             f"(events {[r for r, _ in self.events()]}); log:\n{log}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            terminate(self.proc.pid, timeout=3.0)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3)


class Dhclient(DhcpClient):
    """isc-dhcp-client in the foreground (-d).  renewal_time: supersede the server's
    T1 so the client renews (unicast to the server) every that many seconds."""

    name = "dhclient"
    BOUND = {"BOUND", "REBOOT"}
    RENEWED = {"RENEW", "REBIND"}

    def start(self, renewal_time: int | None = None) -> Dhclient:
        script = self.dir / "script.sh"
        script.write_text(DHCLIENT_SCRIPT.format(log=self._log_snippet("$reason")))
        script.chmod(0o755)
        extra = f"supersede dhcp-renewal-time {renewal_time};" if renewal_time else ""
        conf = self.dir / "dhclient.conf"
        conf.write_text(DHCLIENT_CONF.format(extra=extra))
        self._start(["dhclient", "-d", "-v", "-1", "-cf", str(conf), "-sf", str(script),
                     "-lf", str(self.dir / "leases"), "-pf", str(self.dir / "pid"), "eth0"])
        return self


class Udhcpc(DhcpClient):
    """busybox udhcpc in the foreground (-f); renew() sends SIGUSR1 (a unicast renewal
    to the server, RENEWING)."""

    name = "udhcpc"
    BOUND = {"bound"}
    RENEWED = {"renew"}

    def start(self) -> Udhcpc:
        script = self.dir / "script.sh"
        script.write_text(UDHCPC_SCRIPT.format(log=self._log_snippet("$1")))
        script.chmod(0o755)
        self._start(["busybox", "udhcpc", "-f", "-i", "eth0", "-t", "10", "-T", "1",
                     "-s", str(script)])
        return self

    def renew(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGUSR1)


def addresses(vm: Vm) -> list[str]:
    """eth0's IPv4 addresses with prefix length."""
    out = vm.netns.ip("-4", "-o", "addr", "show", "dev", "eth0")
    return [line.split()[3] for line in out.splitlines() if " inet " in line]


def default_route(vm: Vm) -> str | None:
    out = vm.netns.ip("-4", "route", "show", "default").split()
    return out[out.index("via") + 1] if "via" in out else None


def mtu(vm: Vm) -> int:
    out = vm.netns.ip("-o", "link", "show", "eth0").split()
    return int(out[out.index("mtu") + 1])


__all__ = ["Dhclient", "Udhcpc", "addresses", "default_route", "mtu"]
