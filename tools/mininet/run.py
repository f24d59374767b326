"""Run wakame-vnet on a mininet topology and pingall; exit 0 only with 0% dropped.

Meant to run *inside the sandbox* `run-sandboxed.sh` builds (private network, PID and
mount namespaces, private /tmp): it starts an Open vSwitch of its own there, vnmgr and
vnet-webapi, the mininet network (`vnet_topo.VnetTopo`), one vna per hypervisor switch,
provisions the model over HTTP and pings. It refuses to run anywhere else, because
mininet's error paths clean up machine-wide by process name.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from mininet.log import info, setLogLevel
from mininet.net import Mininet
from mininet.node import RemoteController
from provision import provision
from vnet_topo import VnetHypervisor, VnetTopo, vnet_plan

from lab import Lab
from lab.ovs import OvsInstance
from lab.services import (
    TCP_ESTABLISHED,
    ServiceHandle,
    Services,
    find_program,
    start_service,
    tcp_sockets,
)
from vnctl.api import Api

SANDBOX_ENV = "VNET_MN_WORKDIR"  # set by run-sandboxed.sh to the run's work directory


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hypervisors", type=int, default=3)
    parser.add_argument("--vms", type=int, default=2, help="VMs per hypervisor")
    parser.add_argument("--networks", type=int, default=2, choices=(1, 2),
                        help="virtual networks; 2 adds a router between them")
    parser.add_argument("--converge-timeout", type=float, default=30.0,
                        help="seconds for pingall to first reach 0%% dropped")
    parser.add_argument("--cli", action="store_true",
                        help="open the mininet CLI after the pingall")
    return parser.parse_args(argv)


def sandbox_workdir() -> Path:
    """The work directory, after checking we really are in the sandbox: its private
    tmp must be what /tmp is (the bind mount only exists in the sandbox's mount
    namespace)."""
    workdir = os.environ.get(SANDBOX_ENV)
    if not workdir:
        sys.exit(f"run.py must run inside tools/mininet/run-sandboxed.sh ({SANDBOX_ENV} unset)")
    private, tmp = os.stat(Path(workdir) / "tmp"), os.stat("/tmp")
    if (private.st_dev, private.st_ino) != (tmp.st_dev, tmp.st_ino):
        sys.exit(f"/tmp is not {workdir}/tmp: not in the sandbox, refusing to run mininet")
    return Path(workdir)


def start_vna(services: Services, lab: Lab, hv: VnetHypervisor, rundir: Path) -> ServiceHandle:
    """vna for switch `hv` in this (sandbox) namespace; all vnas share one OVSDB, so
    each needs its own OpenFlow port, and none serves metrics (nobody scrapes them)."""
    env = {
        **services.common_env(f"vna-{hv.name}"),
        "VNET_VNA_NODE_ID": hv.node_id,
        "VNET_VNA_BRIDGE": hv.name,
        "VNET_VNA_OVSDB": f"unix:{rundir}/db.sock",
        "VNET_VNA_OF_HOST": "127.0.0.1",
        "VNET_VNA_OF_PORT": str(hv.of_port),
        "VNET_VNA_TRANSPORT": "mac2mac",
        "VNET_VNA_DATAPATH_TYPE": "netdev",
        "VNET_VNA_METRICS_PORT": "",
    }
    handle = start_service(f"vna-{hv.name}", [find_program("vna")], run_dir=services.run_dir,
                           env=env)
    lab.on_close(handle.stop)
    return handle


def converge(net: Mininet, timeout: float) -> tuple[int, float]:
    """pingall until 0% dropped (flows are still being installed at first); returns
    the attempts it took and the last loss."""
    deadline, attempts, loss = time.monotonic() + timeout, 0, 100.0
    while time.monotonic() < deadline:
        attempts += 1
        loss = net.pingAll(timeout=1)
        if loss == 0:
            break
    return attempts, loss


def run(args: argparse.Namespace, workdir: Path) -> int:
    plan = vnet_plan(args.hypervisors, args.vms, args.networks)
    started = time.monotonic()
    ovs = OvsInstance("mn", workdir / "ovs", None)
    # mininet calls plain ovs-vsctl: the environment points it at this OVS.
    os.environ.update(ovs.env)
    ovs.start()
    lab = Lab(f"{workdir.name}-", base_dir=workdir / "lab")
    net: Mininet | None = None
    try:
        services = Services(lab)
        services.start_vnmgr()
        services.start_webapi()
        provision(Api(services.webapi_url), plan)

        # Mininet.init() would raise sysctls, some machine-wide (fs.file-max,
        # kernel.pty.max): skip it, we are root and need no more than the defaults.
        Mininet.inited = True
        net = Mininet(topo=VnetTopo(args.hypervisors, args.vms, args.networks),
                      controller=None, autoSetMacs=False, waitConnected=False)
        for hv in plan.hypervisors:
            # VnetSwitch keeps only the controller on its own vna's port.
            net.addController(RemoteController(f"c{hv.index}", ip="127.0.0.1",
                                               port=hv.of_port))
        net.start()  # creates the bridges; the vnas come after (vna creates a missing one)
        vnas = [(hv, start_vna(services, lab, hv, ovs.rundir)) for hv in plan.hypervisors]
        for hv, vna in vnas:
            vna.wait_ready(lambda v=vna, p=hv.of_port: tcp_sockets(v.pid, p, TCP_ESTABLISHED) > 0,
                           30.0, f"{hv.name} to connect on port {hv.of_port}")
        ready = time.monotonic()
        attempts, loss = converge(net, args.converge_timeout)
        state = "converged" if loss == 0 else f"NOT converged ({loss:g}% dropped)"
        info(f"*** {state} after {attempts} pingall(s), {time.monotonic() - ready:.1f}s\n")
        if loss == 0:
            # The verdict: once converged, a second full pingall must lose nothing.
            loss = net.pingAll(timeout=1)
        info(f"*** pingall: {loss:g}% dropped, {len(plan.vms)} hosts, "
             f"{len(plan.hypervisors)} switches, total {time.monotonic() - started:.1f}s\n")
        if args.cli:
            from mininet.cli import CLI

            CLI(net)
        return 0 if loss == 0 else 1
    finally:
        if net is not None:
            net.stop()
        # lab.close() removes the lab directory with the service logs: keep a copy.
        lab.collect_logs(workdir / "logs")
        lab.close()
        ovs.stop(remove_rundir=False)  # keep its logs; the wrapper removes the workdir


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = sandbox_workdir()
    setLogLevel("info")
    return run(args, workdir)


if __name__ == "__main__":
    sys.exit(main())
