"""Incremental recomputation: few owners per change, and always equal to a full rebuild."""

from __future__ import annotations

import ipaddress
import random

import pytest
from vna_kit import TUNNEL_PORT, Agent, ModelBuilder, routed_world

from vna.features import FEATURES
from vna.routers import topology
from vna.view import LocalBinding


def big_network(n: int) -> ModelBuilder:
    m = ModelBuilder()
    dp1, dp2 = m.datapath("1"), m.datapath("2")
    under = m.network("underlay", "192.168.0.0/24", mode="physical")
    m.host("h1", dp1, under, "192.168.0.1")
    m.host("h2", dp2, under, "192.168.0.2")
    nw = m.network("big", "10.0.0.0/16")
    for i in range(n):
        m.vif(f"v{i}", dp1 if i % 2 else dp2, nw, f"10.0.{i // 250}.{i % 250 + 2}")
    m.router("r", [(nw, "10.0.255.1"), (m.network("other", "10.1.0.0/24"), "10.1.0.1")])
    return m


def binding(m: ModelBuilder) -> LocalBinding:
    ports = {
        u: i + 1
        for i, u in enumerate(sorted(m.model["interfaces"]))
        if m.model["interfaces"][u]["owner_datapath_uuid"] == "dp-1"
    }
    return LocalBinding("dp-1", ports=ports, tunnel_ofport=TUNNEL_PORT)


@pytest.mark.parametrize("where", ["dp-1", "dp-2"])
def test_one_new_interface_in_a_200_interface_network_is_constant_work(where):
    m = big_network(200)
    agent = Agent(m.snapshot(), binding(m))
    before = agent.desired.recomputations
    m.vif("new", where, "nw-big", "10.0.9.9")
    added, removed = agent.sync(m.snapshot())
    # the interface itself, plus its network when it is local (physical flood lists)
    assert agent.desired.recomputations - before <= 2, agent.last_dirty
    assert removed == []
    # ARP responder + ARP_RESOLVE, + L2 and OUTPUT (send) toward dp-2; a local vif not
    # plugged in yet has no port
    assert len(added) == (2 if where == "dp-1" else 4)
    if where == "dp-1":
        before = agent.desired.recomputations
        ports = dict(agent.binding.ports, **{"if-new": 999})
        added, removed = agent.rebind(LocalBinding("dp-1", ports=ports, tunnel_ofport=TUNNEL_PORT))
        assert agent.desired.recomputations - before <= 2, agent.last_dirty
        # classifier, 2 antispoof, L2, OUTPUT, and the punts of fragments to its
        # router's two addresses
        assert removed == [] and len(added) == 7
    assert agent.desired.flows() == agent.full()


def test_deleting_an_interface_leaves_no_stale_flows():
    m = big_network(20)
    agent = Agent(m.snapshot(), binding(m))
    victim = "if-v3"
    owned = agent.desired.owner_flows(("interface", victim))
    assert owned
    for lease in [u for u, r in m.model["ip_leases"].items() if r["interface_uuid"] == victim]:
        m.delete("ip_leases", lease)
    for lease in [u for u, r in m.model["mac_leases"].items() if r["interface_uuid"] == victim]:
        m.delete("mac_leases", lease)
    m.delete("interfaces", victim)
    _, removed = agent.sync(m.snapshot())
    assert set(removed) == set(owned)
    assert agent.desired.flows() == agent.full()


# --- randomized model churn --------------------------------------------------------
class Churn:
    """Random but referentially consistent edits of a model (deletes cascade like vnmgr)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.m = m = ModelBuilder()
        self.dps = [m.datapath(str(i)) for i in range(3)]
        under = m.network("underlay", "192.168.0.0/24", mode="physical")
        self.hosts = [
            m.host(f"h{i}", dp, under, f"192.168.0.{i + 1}") for i, dp in enumerate(self.dps)
        ]
        self.n = 0

    def pick(self, resource: str, **where) -> str | None:
        rows = [
            u
            for u, r in self.m.model.get(resource, {}).items()
            if all(r.get(k) == v for k, v in where.items())
        ]
        return self.rng.choice(sorted(rows)) if rows else None

    def networks(self) -> list[str]:
        return sorted(u for u in self.m.model["networks"] if u != "nw-underlay")

    def cascade_interface(self, iface: str) -> None:
        model = self.m.model
        for resource in ("ip_leases", "mac_leases", "routes", "active_interfaces"):
            for u in [u for u, r in model[resource].items() if r["interface_uuid"] == iface]:
                del model[resource][u]
        for resource in ("datapath_networks", "datapath_route_links"):
            for r in model[resource].values():
                if r["interface_uuid"] == iface:
                    r["interface_uuid"] = None
        for ns in [u for u, r in model.get("network_services", {}).items()
                   if r["interface_uuid"] == iface]:
            self.delete_network_service(ns)
        for join in [u for u, r in model["interface_security_groups"].items()
                     if r["interface_uuid"] == iface]:
            del model["interface_security_groups"][join]
        for fil in [u for u, r in model.get("filters", {}).items()
                    if r["interface_uuid"] == iface]:
            self.delete_filter(fil)
        for tr in [u for u, r in model.get("translations", {}).items()
                   if r["interface_uuid"] == iface]:
            self.delete_translation(tr)
        del model["interfaces"][iface]

    def delete_translation(self, tr: str) -> None:
        model = self.m.model
        for tsa in [u for u, r in model.get("translation_static_addresses", {}).items()
                    if r["translation_uuid"] == tr]:
            del model["translation_static_addresses"][tsa]
        del model["translations"][tr]

    def delete_filter(self, fil: str) -> None:
        model = self.m.model
        for static in [u for u, r in model.get("filter_statics", {}).items()
                       if r["filter_uuid"] == fil]:
            del model["filter_statics"][static]
        del model["filters"][fil]

    def random_rules(self) -> str:
        rng, groups = self.rng, sorted(self.m.model["security_groups"])
        rules = []
        for _ in range(rng.randrange(4)):
            source = (rng.choice(groups) if groups and rng.random() < 0.5
                      else rng.choice(["0.0.0.0/0", "10.9.0.0/16", f"10.9.1.{self.n % 250}"]))
            proto = rng.choice(["tcp", "udp", "icmp"])
            port = ("-1" if proto == "icmp" else
                    rng.choice(["22", "80", "1000-1010", "5432"]))
            rules.append(f"{proto}:{port}:{source}")
        if rng.random() < 0.1:
            rules.append("garbage rule")  # written before vnmgr checked rules
        return "\n".join(rules)

    def delete_network_service(self, ns: str) -> None:
        model = self.m.model
        for dnss in [u for u, r in model.get("dns_services", {}).items()
                     if r["network_service_uuid"] == ns]:
            for record in [u for u, r in model.get("dns_records", {}).items()
                           if r["dns_service_uuid"] == dnss]:
                del model["dns_records"][record]
            del model["dns_services"][dnss]
        del model["network_services"][ns]

    def step(self) -> None:
        m, rng = self.m, self.rng
        self.n += 1
        op = rng.choice(
            [
                "net",
                "vif",
                "vif",
                "vif",
                "del_vif",
                "lease",
                "del_lease",
                "router",
                "route",
                "del_route",
                "flip_route",
                "mode",
                "segment",
                "dpn",
                "dpn",
                "dpn",
                "del_dpn",
                "host_ip",
                "del_net",
                "mac",
                "migrate",
                "unbind",
                "dprl",
                "dprl_all",
                "del_dprl",
                "dprl_mac",
                "dprl_port",
                "vif_in",
                "service",
                "service",
                "service",
                "service",
                "del_service",
                "service_lease",
                "service_type",
                "service_iface",
                "dns_record",
                "mtu",
                "port_owner",
                "port_owner",
                "gw_route",
                "translation",
                "static_address",
                "static_address",
                "del_translation",
                "route_translation",
                "sg",
                "sg_rules",
                "del_sg",
                "sg_join",
                "sg_join",
                "sg_join",
                "sg_leave",
                "filter_flag",
                "filter",
                "static",
                "static",
                "del_static",
                "del_filter",
            ]
        )
        nets = self.networks()
        if op == "net" or not nets:
            mode = "physical" if rng.random() < 0.2 else "virtual"
            m.network(f"n{self.n}", f"10.{rng.randrange(8)}.0.0/24", mode=mode)
        elif op == "vif":
            net = rng.choice(nets)
            m.vif(f"v{self.n}", rng.choice(self.dps), net, f"10.9.{rng.randrange(4)}.{self.n}")
        elif op == "vif_in":  # an address inside its network's subnet (routable there)
            row = m.model["networks"][rng.choice(nets)]
            address = ipaddress.IPv4Address(row["ipv4_network"]) + 2 + self.n % 200
            m.vif(f"v{self.n}", rng.choice(self.dps), row["uuid"], str(address))
        elif op == "del_vif" and (v := self.pick("interfaces", mode="vif")):
            self.cascade_interface(v)
        elif op == "lease" and (v := self.pick("interfaces", mode="vif")):
            m.ip(v, rng.choice(nets), f"10.8.{rng.randrange(4)}.{self.n}")
        elif op == "del_lease" and (lease := self.pick("ip_leases")):
            if m.model["ip_leases"][lease]["interface_uuid"] not in self.hosts:
                m.delete("ip_leases", lease)
        elif op == "router" and len(nets) >= 2:
            a, b = rng.sample(nets, 2)
            m.router(f"r{self.n}", [(a, f"10.7.0.{self.n}"), (b, f"10.7.1.{self.n}")])
        elif op == "route" and (link := self.pick("route_links")):
            port = self.pick("routes", route_link_uuid=link)
            if port:
                row = m.model["routes"][port]
                m.route(
                    link,
                    row["interface_uuid"],
                    row["network_uuid"],
                    f"10.{rng.randrange(10)}.{rng.randrange(4)}.0/{rng.choice([16, 24, 28])}",
                )
        elif op == "del_route" and (route := self.pick("routes")):
            m.delete("routes", route)
        elif op == "flip_route" and (route := self.pick("routes")):
            flag = rng.choice(["ingress", "egress"])
            m.model["routes"][route][flag] = not m.model["routes"][route][flag]
        elif op == "mode":
            net = m.model["networks"][rng.choice(nets)]
            net["network_mode"] = "physical" if net["network_mode"] == "virtual" else "virtual"
        elif op == "segment":
            m.model["networks"][rng.choice(nets)]["segment_id"] += 5000
        elif op == "dpn":
            dp_index = rng.randrange(3)
            dp, net = self.dps[dp_index], rng.choice(nets)
            if f"dpn-{dp}-{net}" not in m.model["datapath_networks"]:
                iface = self.hosts[dp_index] if rng.random() < 0.7 else None
                m.dpn(dp, net, iface)
        elif op == "del_dpn" and (dpn := self.pick("datapath_networks")):
            m.delete("datapath_networks", dpn)
        elif op == "host_ip":
            host = rng.choice(self.hosts)
            lease = self.pick("ip_leases", interface_uuid=host)
            m.model["ip_leases"][lease]["ipv4_address"] = f"192.168.1.{self.n % 250}"
        elif op == "mac" and (v := self.pick("interfaces", mode="vif")):
            m.mac(v)
        elif op == "migrate" and (v := self.pick("interfaces", mode="vif")):
            # the port appears elsewhere (or again): that datapath now holds the binding
            m.bind(v, rng.choice(self.dps), rng.choice(["active", "active", "standby"]))
        elif op == "unbind" and (v := self.pick("interfaces", mode="vif")):
            m.unbind(v)
        elif op == "dprl" and (link := self.pick("route_links")):
            dp = self.dps[0] if rng.random() < 0.5 else rng.choice(self.dps)  # 0 is ours
            if f"dprl-{dp}-{link}" not in m.model["datapath_route_links"]:
                choice = rng.random()  # its underlay port: host, fallback, or any port
                iface = (self.hosts[self.dps.index(dp)] if choice < 0.5 else None
                         if choice < 0.8 else self.pick("interfaces", owner_datapath_uuid=dp))
                m.dprl(dp, link, iface)
        elif op == "dprl_all" and (link := self.pick("route_links")):
            for dp in self.dps:  # OpenVNet's datasets give every datapath a MAC per router
                if f"dprl-{dp}-{link}" not in m.model["datapath_route_links"]:
                    m.dprl(dp, link)
        elif op == "del_dprl" and (dprl := self.pick("datapath_route_links")):
            m.delete("datapath_route_links", dprl)
        elif op == "dprl_mac" and (dprl := self.pick("datapath_route_links")):
            m.model["datapath_route_links"][dprl]["mac_address"] = m.next_mac("0e:00:01")
        elif op == "dprl_port" and (dprl := self.pick("datapath_route_links")):
            row = m.model["datapath_route_links"][dprl]
            row["interface_uuid"] = self.pick("interfaces",
                                              owner_datapath_uuid=row["datapath_uuid"])
        elif op == "service":  # a dhcp or dns service: a simulated interface on a network
            iface = m.interface(f"s{self.n}", "simulated", None)
            lease = m.mac(iface, m.next_mac("02:00:02"))
            # mostly where vifs are, so their punt flows come and go
            used = sorted({r["network_uuid"] for r in m.model["ip_leases"].values()} & set(nets))
            net = rng.choice(used if used and rng.random() < 0.8 else nets)
            m.ip(iface, net, f"10.6.0.{self.n % 250}", lease)
            ns = m.network_service(iface, rng.choice(["dhcp", "dns", "dns"]), f"s{self.n}")
            if m.model["network_services"][ns]["type"] == "dns" and rng.random() < 0.7:
                m.dns_service(ns, rng.choice([None, "192.0.2.53"]))
        elif op == "del_service" and (ns := self.pick("network_services")):
            self.delete_network_service(ns)
        elif op == "service_lease" and (svc := self.pick("network_services")):
            iface = m.model["network_services"][svc]["interface_uuid"]
            for lease in [u for u, r in m.model["ip_leases"].items()
                          if r["interface_uuid"] == iface]:
                m.delete("ip_leases", lease)
            if rng.random() < 0.7:
                m.ip(iface, rng.choice(nets), f"10.6.1.{self.n % 250}")
        elif op == "service_type" and (ns := self.pick("network_services")):
            row = m.model["network_services"][ns]
            row["type"] = "dhcp" if row["type"] == "dns" else "dns"
        elif op == "service_iface" and (ns := self.pick("network_services")):
            # served by another interface (any: a vif, or one without leases)
            m.model["network_services"][ns]["interface_uuid"] = self.pick("interfaces")
        elif op == "dns_record" and (dnss := self.pick("dns_services")):
            m.dns_record(dnss, f"r{self.n}", f"10.6.1.{self.n % 250}")
        elif op == "mtu":
            m.model["networks"][rng.choice(nets)]["mtu"] = rng.choice([None, 1400, 9000])
        elif op == "del_net" and len(nets) > 2:
            self.delete_network(rng.choice(nets))
        elif op == "port_owner" and (route := self.pick("routes")):
            # a router port gets (or loses) a gateway: on a physical network it counts
            iface = m.model["routes"][route]["interface_uuid"]
            m.model["interfaces"][iface]["owner_datapath_uuid"] = rng.choice(self.dps + [None])
        elif op == "gw_route" and (route := self.pick("routes")):
            row = m.model["routes"][route]
            net = m.model["networks"][row["network_uuid"]]
            gateway = ipaddress.IPv4Address(net["ipv4_network"]) + 1 + self.n % 50
            m.route(row["route_link_uuid"], row["interface_uuid"], row["network_uuid"],
                    rng.choice(["0.0.0.0/0", "192.0.2.0/24", "198.51.100.0/25"]),
                    gateway=str(gateway))
        elif op == "translation" and (route := self.pick("routes")):
            iface = m.model["routes"][route]["interface_uuid"]
            m.add("translations", f"tr-{self.n}", interface_uuid=iface,
                  mode=rng.choice(["static_address", "snat"]), passthrough=rng.random() < 0.3)
        elif op == "static_address" and (tr := self.pick("translations")):
            ports = rng.choice([(None, None), (8080, 80)])
            m.add("translation_static_addresses", f"tsa-{self.n}", translation_uuid=tr,
                  route_link_uuid=None, ingress_ipv4_address=f"172.16.0.{self.n % 250}",
                  egress_ipv4_address=f"10.9.1.{self.n % 250}", ingress_port_number=ports[0],
                  egress_port_number=ports[1], leased=False)
        elif op == "del_translation" and (tr := self.pick("translations")):
            self.delete_translation(tr)
        elif op == "route_translation" and (route := self.pick("routes")):
            row = m.model["interfaces"][m.model["routes"][route]["interface_uuid"]]
            row["enable_route_translation"] = not row.get("enable_route_translation")
        elif op == "sg":
            m.add("security_groups", f"sg-{self.n}", display_name=None, description=None,
                  rules=self.random_rules())
        elif op == "sg_rules" and (sg := self.pick("security_groups")):
            m.model["security_groups"][sg]["rules"] = self.random_rules()
        elif op == "del_sg" and (sg := self.pick("security_groups")):
            for join in [u for u, r in m.model["interface_security_groups"].items()
                         if r["security_group_uuid"] == sg]:
                del m.model["interface_security_groups"][join]
            del m.model["security_groups"][sg]  # rules naming it keep a dangling uuid
        elif op == "sg_join" and (sg := self.pick("security_groups")) \
                and (v := self.pick("interfaces", mode="vif")):
            if not any(r["interface_uuid"] == v and r["security_group_uuid"] == sg
                       for r in m.model["interface_security_groups"].values()):
                m.add("interface_security_groups", f"isg-{self.n}", interface_uuid=v,
                      security_group_uuid=sg)
        elif op == "sg_leave" and (join := self.pick("interface_security_groups")):
            m.delete("interface_security_groups", join)
        elif op == "filter_flag" and (v := self.pick("interfaces", mode="vif")):
            flag = rng.choice(["enable_filtering", "ingress_filtering_enabled"])
            m.model["interfaces"][v][flag] = not m.model["interfaces"][v].get(flag)
        elif op == "filter" and (v := self.pick("interfaces", mode="vif")):
            m.add("filters", f"fil-{self.n}", interface_uuid=v, mode="static",
                  ingress_passthrough=rng.random() < 0.3, egress_passthrough=rng.random() < 0.3)
        elif op == "static" and (fil := self.pick("filters")):
            proto = rng.choice(["tcp", "udp", "icmp", "arp", "all"])
            m.add("filter_statics", f"fs-{self.n}", filter_uuid=fil, protocol=proto,
                  ipv4_address=rng.choice(["0.0.0.0", "10.9.0.0", f"10.9.1.{self.n % 250}"]),
                  ipv4_prefix=rng.choice([0, 16, 32]),
                  port_number=rng.choice([0, 22, 80]) if proto in ("tcp", "udp") else None,
                  passthrough=rng.random() < 0.6)
        elif op == "del_static" and (static := self.pick("filter_statics")):
            m.delete("filter_statics", static)
        elif op == "del_filter" and (fil := self.pick("filters")):
            self.delete_filter(fil)

    def delete_network(self, net: str) -> None:
        model = self.m.model
        for resource in ("ip_leases", "routes", "datapath_networks"):
            for u in [u for u, r in model[resource].items() if r["network_uuid"] == net]:
                del model[resource][u]
        del model["networks"][net]

    def binding(self, transport: str) -> LocalBinding:
        ifaces = self.m.model["interfaces"]
        claims = self.m.model["active_interfaces"].values()
        mine = sorted({u for u, r in ifaces.items()
                       if r["mode"] == "host" and r["owner_datapath_uuid"] == "dp-0"}
                      | {c["interface_uuid"] for c in claims if c["datapath_uuid"] == "dp-0"})
        # leave some interfaces unbound (not yet plugged in)
        ports = {u: i + 1 for i, u in enumerate(mine) if self.rng.random() < 0.8}
        # MAC bindings the agent learned on physical networks (vna.neighbors)
        physical = sorted(u for u, r in self.m.model["networks"].items()
                          if r["network_mode"] == "physical")
        neighbors = {(self.rng.choice(physical), f"10.{self.rng.randrange(8)}.0.{i + 1}"):
                     self.m.next_mac("0a:00:00") for i in range(self.rng.randrange(3))
                     if physical}
        return LocalBinding("dp-0", transport, ports, TUNNEL_PORT, neighbors)


@pytest.mark.parametrize("transport", ["tunnel", "mac2mac"])
@pytest.mark.parametrize("seed", range(12))
def test_incremental_equals_full_rebuild_under_random_churn(seed, transport):
    churn = Churn(seed)
    agent = Agent(churn.m.snapshot(), churn.binding(transport))
    for step in range(100):
        churn.step()
        agent.sync(churn.m.snapshot())
        if step % 7 == 0:
            agent.rebind(churn.binding(transport))
        assert agent.desired.flows() == agent.full(), (seed, step, churn.n)


@pytest.mark.parametrize("transport", ["tunnel", "mac2mac"])
@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f.name)
def test_each_feature_rule_alone_keeps_its_own_flows_exact(feature, transport):
    """The dirty set is the union of the features' rules; each rule must be complete for
    its own feature's flows, so a feature can be added or changed alone."""
    for seed in range(4):
        churn = Churn(100 + seed)
        agent = Agent(churn.m.snapshot(), churn.binding(transport), features=[feature])
        for step in range(60):
            churn.step()
            agent.sync(churn.m.snapshot())
            if step % 7 == 0:
                agent.rebind(churn.binding(transport))
            assert agent.desired.flows() == agent.full(), (feature.name, seed, step)


@pytest.mark.parametrize("change", ["router_mac", "router_address", "vif"])
def test_a_view_lends_its_router_topology_only_when_the_event_leaves_it_alone(change):
    m = routed_world()
    bind = binding(m)
    agent = Agent(m.snapshot(), bind)
    agent.sync(m.snapshot())  # a first derived view, whose topology the next one may reuse
    old = agent._last
    before = topology(old)
    router_iface = next(iter(m.model["routes"].values()))["interface_uuid"]
    if change == "router_mac":
        lease = next(r for r in m.model["mac_leases"].values()
                     if r["interface_uuid"] == router_iface)
        lease["mac_address"] = "02:00:00:00:99:99"
    elif change == "router_address":
        lease = next(r for r in m.model["ip_leases"].values()
                     if r["interface_uuid"] == router_iface)
        lease["ipv4_address"] = lease["ipv4_address"].rsplit(".", 1)[0] + ".254"
    else:
        m.vif("c", "dp-2", next(iter(m.model["routes"].values()))["network_uuid"],
              "10.1.0.77")
    agent.sync(m.snapshot())
    after = topology(agent._last)
    assert (after.routers is before.routers) == (change == "vif")
    assert agent.desired.flows() == agent.full()
