"""Lab library: hypervisors, VMs and services as namespaces and processes on one machine.

Used by the e2e tests, the demo and the benchmarks. Needs root, iproute2, ethtool and
Open vSwitch (userspace datapath); nothing beyond the standard library in Python, but
PyMySQL for lab.mysql (a throw-away MariaDB database).
"""

from lab.hosts import (
    BASE_DIR,
    TUNNEL_VM_MTU,
    UNDERLAY_MTU,
    Hypervisor,
    Lab,
    LinuxHost,
    Underlay,
    Vm,
    cleanup_orphans,
    cleanup_stale,
    new_prefix,
)
from lab.netns import Netns, add_veth, list_netns
from lab.ovs import OvsInstance, format_dpid, normalise_flow
from lab.probes import BackgroundPing, PingResult, TransferResult
from lab.proc import CommandError

__all__ = [
    "BASE_DIR",
    "TUNNEL_VM_MTU",
    "UNDERLAY_MTU",
    "BackgroundPing",
    "CommandError",
    "Hypervisor",
    "Lab",
    "LinuxHost",
    "Netns",
    "OvsInstance",
    "PingResult",
    "TransferResult",
    "Underlay",
    "Vm",
    "add_veth",
    "cleanup_orphans",
    "cleanup_stale",
    "format_dpid",
    "list_netns",
    "new_prefix",
    "normalise_flow",
]
