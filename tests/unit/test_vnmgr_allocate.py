"""vnmgr.allocate.mac_in_use: a MAC held by any of the four kinds of row is taken."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from vnet import models as m
from vnmgr.allocate import allocate_mac, mac_in_use

MAC = 0x02AABBCCDDEE


def _world(session: Session) -> tuple[m.Datapath, m.Network, m.Interface, m.RouteLink]:
    datapath = m.Datapath(uuid="dp-a", dpid="0x1", node_id="a")
    network = m.Network(uuid="nw-a", ipv4_network=0x0A000000, ipv4_prefix=24, segment_id=1)
    interface = m.Interface(uuid="if-a")
    link = m.RouteLink(uuid="rl-a", mac_address=0x02000000000A)
    session.add_all([datapath, network, interface, link])
    session.flush()
    return datapath, network, interface, link


HOLDERS: dict[str, Callable[[m.Datapath, m.Network, m.Interface, m.RouteLink], m.Resource]] = {
    "mac lease": lambda d, n, i, r: m.MacLease(uuid="ml-x", interface_id=i.id, mac_address=MAC),
    "route link": lambda d, n, i, r: m.RouteLink(uuid="rl-x", mac_address=MAC),
    "datapath network": lambda d, n, i, r: m.DatapathNetwork(
        uuid="dn-x", datapath_id=d.id, network_id=n.id, broadcast_mac_address=MAC),
    "datapath route link": lambda d, n, i, r: m.DatapathRouteLink(
        uuid="dr-x", datapath_id=d.id, route_link_id=r.id, mac_address=MAC),
}


@pytest.mark.parametrize("holder", HOLDERS)
def test_a_mac_held_by_any_row_is_in_use(session: Session, holder: str) -> None:
    world = _world(session)
    assert not mac_in_use(session, MAC)
    session.add(HOLDERS[holder](*world))
    session.flush()
    assert mac_in_use(session, MAC)
    assert not mac_in_use(session, MAC + 1)


def test_allocate_mac_gives_a_free_locally_administered_unicast_mac(session: Session) -> None:
    _world(session)
    mac = allocate_mac(session)
    assert mac >> 24 == 0x525400 and not mac_in_use(session, mac)
