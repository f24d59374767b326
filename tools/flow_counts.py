"""Flows per VM and per router port, computed from the pure core (no switch needed).

    .venv/bin/python tools/flow_counts.py

World: two datapaths, nw-1 and nw-2 joined by a router, one vif per network on each
datapath; counts are by owner, on the vif's own datapath and on the other one, for both
transports.  Used for the flow-count table in docs/pipeline.md.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit.vna_kit import TUNNEL_PORT, agent_on, routed_world  # noqa: E402


def main() -> None:
    for transport in ("tunnel", "mac2mac"):
        m = routed_world()
        if transport == "mac2mac":
            for dp, h in (("dp-1", "if-h1"), ("dp-2", "if-h2")):
                for nw in ("nw-1", "nw-2"):
                    m.dpn(dp, nw, h)
        a = agent_on(m, "1", {"if-a": 1, "if-h1": 50}, transport=transport)
        by_owner = Counter()
        tables = Counter()
        for key in a.desired._by_owner:
            by_owner[key] = len(a.desired.owner_flows(key))
        for flow in a.desired.flows().values():
            tables[flow.table] += 1
        print(f"[{transport}] on dp-1 (tunnel port {TUNNEL_PORT}):")
        print(f"  local vif if-a:  {by_owner[('interface', 'if-a')]}")
        print(f"  remote vif if-b: {by_owner[('interface', 'if-b')]}")
        print(f"  router rl-r (2 ports): {by_owner[('route_link', 'rl-r')]}")
        ports = [k for k in by_owner if k[0] == 'interface' and 'rl-r' in k[1]]
        print(f"  router port interfaces: {[by_owner[k] for k in ports]}")
        print(f"  datapath-wide: {by_owner[('datapath',)]}")
        print(f"  networks: {[by_owner[('network', n)] for n in ('nw-1', 'nw-2')]}")
        print(f"  total: {len(a.desired.flows())}")


if __name__ == "__main__":
    main()
