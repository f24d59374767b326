"""One private Open vSwitch (ovsdb-server + ovs-vswitchd) per lab hypervisor.

Each instance keeps everything (database, sockets, pidfiles, logs) in its own run
directory and runs its daemons inside the hypervisor's network namespace: the netdev
datapath's tap devices outlive a killed vswitchd, and deleting the namespace is the
one reliable way to remove them. The client tools (vsctl, ofctl, appctl) talk over
unix sockets in the run directory, so they work from any namespace.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from lab.netns import Netns
from lab.proc import read_pidfile, run, same_process, terminate, wait_for

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
DAEMONS = ("ovs-vswitchd", "ovsdb-server")  # stop order: switch first, then its database

# Parts of a dump-flows line that change with time or traffic.
_VOLATILE = re.compile(r"\b(duration|idle_age|hard_age)=[^,\s]+,?\s*")
_COUNTERS = re.compile(r"\b(n_packets|n_bytes)=\d+,?\s*")


def format_dpid(dpid: int | str) -> str:
    """16 hex digits, as other_config:datapath-id wants them."""
    value = int(dpid, 16) if isinstance(dpid, str) else dpid
    return f"{value:016x}"


def normalise_flow(line: str, keep_counters: bool = False) -> str:
    line = _VOLATILE.sub("", line.strip())
    if not keep_counters:
        line = _COUNTERS.sub("", line)
    return line.strip().rstrip(",")


class OvsInstance:
    """ovsdb-server + ovs-vswitchd with their own run directory, inside `netns`."""

    def __init__(self, name_prefix: str, rundir: str | Path, netns: Netns | str | None):
        self.name = name_prefix
        self.rundir = Path(rundir)
        self.netns = Netns(netns) if isinstance(netns, str) else netns
        self.env = {
            "OVS_RUNDIR": str(self.rundir),
            "OVS_LOGDIR": str(self.rundir),
            "OVS_DBDIR": str(self.rundir),
            "OVS_SYSCONFDIR": str(self.rundir),
        }

    def __repr__(self) -> str:
        return f"OvsInstance({self.name!r}, {str(self.rundir)!r}, {self.netns!r})"

    # --- paths ---------------------------------------------------------------------------

    @property
    def db_sock(self) -> Path:
        return self.rundir / "db.sock"

    @property
    def ovsdb_remote(self) -> str:
        """What an OVSDB client (vna, python-ovs Idl) connects to."""
        return f"unix:{self.db_sock}"

    def pidfile(self, daemon: str) -> Path:
        return self.rundir / f"{daemon}.pid"

    def log_file(self, daemon: str) -> Path:
        return self.rundir / f"{daemon}.log"

    def pid(self, daemon: str) -> int | None:
        """PID of a running daemon of this instance, None when it is not running."""
        recorded = read_pidfile(self.pidfile(daemon))
        if recorded and same_process(recorded[0], cmd_contains=str(self.rundir)):
            return recorded[0]
        return None

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> OvsInstance:
        self.rundir.mkdir(parents=True, exist_ok=True)
        conf = self.rundir / "conf.db"
        if not conf.exists():
            run(["ovsdb-tool", "create", str(conf), str(SCHEMA)])
        self._daemon(
            "ovsdb-server",
            str(conf),
            f"--remote=punix:{self.db_sock}",
            "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
        )
        self.vsctl("--no-wait", "init")
        self._start_vswitchd()
        return self

    def _start_vswitchd(self) -> None:
        self._daemon("ovs-vswitchd", self.ovsdb_remote)

    def _daemon(self, daemon: str, *args: str) -> None:
        argv = [
            daemon,
            *args,
            f"--pidfile={self.pidfile(daemon)}",
            f"--log-file={self.log_file(daemon)}",
            "--detach",
        ]
        if self.netns:
            argv = self.netns.argv(*argv)
        # Never capture a daemon's output through a pipe: a detached child that kept the
        # pipe open would make us wait forever. Early errors go to a file instead.
        with open(self.rundir / f"{daemon}.stderr", "ab") as err:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env={**os.environ, **self.env},
                timeout=30,
            )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{daemon} failed to start ({proc.returncode}); see {self.rundir}/{daemon}.stderr"
                f" and {self.log_file(daemon)}"
            )
        wait_for(lambda: self.pid(daemon), 10, what=f"{daemon} pidfile in {self.rundir}")

    def restart_vswitchd(self, timeout: float = 10.0) -> None:
        """Kill and restart ovs-vswitchd; the database (bridges, ports) survives, the
        flows do not (they live only in vswitchd's memory)."""
        pid = self.pid("ovs-vswitchd")
        if pid:
            terminate(pid, timeout=timeout)
        self._start_vswitchd()

    def stop(self, remove_rundir: bool = True) -> None:
        """Stop both daemons by the PIDs in their pidfiles, then remove the run directory."""
        for daemon in DAEMONS:
            pid = self.pid(daemon)
            if pid:
                terminate(pid, timeout=5.0)
        if remove_rundir:
            shutil.rmtree(self.rundir, ignore_errors=True)

    def running(self) -> bool:
        return all(self.pid(d) for d in DAEMONS)

    # --- client tools --------------------------------------------------------------------

    def _tool(self, argv: list[str], check: bool, input: str | None, timeout: float) -> str:
        return run(argv, check=check, input=input, env=self.env, timeout=timeout).stdout

    def vsctl(self, *args: str, check: bool = True, timeout: float = 20.0) -> str:
        return self._tool(
            ["ovs-vsctl", f"--db={self.ovsdb_remote}", f"--timeout={int(timeout)}", *args],
            check,
            None,
            timeout + 5,
        )

    def ofctl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 20.0
    ) -> str:
        return self._tool(["ovs-ofctl", "-O", "OpenFlow13", *args], check, input, timeout)

    def appctl(
        self, *args: str, target: str = "ovs-vswitchd", check: bool = True, timeout: float = 20.0
    ) -> str:
        return self._tool(
            ["ovs-appctl", "-t", target, f"--timeout={int(timeout)}", *args],
            check,
            None,
            timeout + 5,
        )

    # --- bridges and ports ---------------------------------------------------------------

    def add_bridge(
        self,
        name: str,
        dpid: int | str | None = None,
        controller: str | None = None,
        *,
        datapath_type: str = "netdev",
        fail_mode: str | None = "secure",
        other_config: Mapping[str, str] | None = None,
    ) -> None:
        """A netdev OpenFlow 1.3 bridge. In-band control is disabled because with a
        127.0.0.1 controller it only adds hidden flows and log noise."""
        settings = [
            f"datapath_type={datapath_type}",
            "protocols=OpenFlow13",
            "other_config:disable-in-band=true",
        ]
        if fail_mode:
            settings.append(f"fail_mode={fail_mode}")
        if dpid is not None:
            settings.append(f"other_config:datapath-id={format_dpid(dpid)}")
        settings += [f"other_config:{k}={v}" for k, v in (other_config or {}).items()]
        self.vsctl("--may-exist", "add-br", name, "--", "set", "bridge", name, *settings)
        if controller:
            self.set_controller(name, controller)

    def set_controller(self, bridge: str, *targets: str) -> None:
        if targets:
            self.vsctl("set-controller", bridge, *targets)
        else:
            self.vsctl("del-controller", bridge)

    def controller_connected(self, bridge: str) -> bool:
        """True when any controller of `bridge` has an established connection.
        vswitchd updates this status in OVSDB lazily: expect it seconds late."""
        uuids = self.vsctl("get", "bridge", bridge, "controller", check=False).strip("[] \n")
        return any(
            self.vsctl("get", "controller", uuid.strip(), "is_connected", check=False).strip()
            == "true"
            for uuid in uuids.split(",")
            if uuid.strip()
        )

    def wait_controller_connected(self, bridge: str, timeout: float = 20.0) -> None:
        wait_for(
            lambda: self.controller_connected(bridge),
            timeout,
            interval=0.2,
            what=f"controller of {bridge} ({self.name}) to connect",
        )

    def add_port(
        self,
        bridge: str,
        port: str,
        *,
        ofport: int | None = None,
        type: str | None = None,
        options: Mapping[str, str] | None = None,
        external_ids: Mapping[str, str] | None = None,
    ) -> None:
        settings = []
        if type:
            settings.append(f"type={type}")
        if ofport is not None:
            settings.append(f"ofport_request={ofport}")
        settings += [f"options:{k}={v}" for k, v in (options or {}).items()]
        settings += [f"external_ids:{k}={v}" for k, v in (external_ids or {}).items()]
        args = ["--may-exist", "add-port", bridge, port]
        if settings:
            args += ["--", "set", "interface", port, *settings]
        self.vsctl(*args)

    def del_port(self, bridge: str, port: str) -> None:
        self.vsctl("--if-exists", "del-port", bridge, port)

    def ofport(self, iface: str, timeout: float = 10.0) -> int:
        """The OpenFlow port number vswitchd assigned (waits for the assignment)."""

        def assigned() -> int | None:
            out = self.vsctl("get", "interface", iface, "ofport", check=False).strip()
            return int(out) if out.lstrip("-").isdigit() and int(out) > 0 else None

        return wait_for(assigned, timeout, what=f"ofport of {iface}")

    # --- flows ---------------------------------------------------------------------------

    def add_flows(self, bridge: str, flows: Iterable[str], bundle: bool = False) -> None:
        text = "\n".join(f.strip() for f in flows if f.strip()) + "\n"
        self.ofctl(*(["--bundle"] if bundle else []), "add-flows", bridge, "-", input=text)

    def del_flows(self, bridge: str, match: str | None = None) -> None:
        self.ofctl("del-flows", bridge, *([match] if match else []))

    def dump_flows(
        self, bridge: str, match: str | None = None, *, keep_counters: bool = False
    ) -> list[str]:
        """Flows without durations/ages (and without counters unless asked), sorted, so
        two dumps of the same table compare equal."""
        out = self.ofctl("--no-names", "dump-flows", bridge, *([match] if match else []))
        lines = [ln for ln in out.splitlines() if ln.strip() and "reply" not in ln]
        return sorted(normalise_flow(ln, keep_counters) for ln in lines)

    def set_tnl_neigh(self, bridge: str, ip: str, mac: str) -> None:
        """Pre-seed the userspace tunnel neighbour cache, so the first tunnelled packet
        after a (re)start is not lost while OVS resolves the remote's MAC."""
        self.appctl("tnl/neigh/set", bridge, ip, mac)
