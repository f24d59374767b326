"""The OVSDB side of the vna (python-ovs): keeps the bridge configured, reports its ports.

One thread owns the Idl (it is not thread-safe). Each time the database changes it
re-applies the bridge settings the agent needs (idempotently, so an operator's edit or
an ovsdb restart is repaired) and reports the bridge's ports to the agent, which binds
them to model interfaces by `external_ids:iface-id` or by name.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import ovs.db.idl as idl_module
import ovs.poller

log = logging.getLogger("vna.ovsdb")

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"


@dataclass(frozen=True)
class OvsPort:
    name: str
    ofport: int
    iface_id: str | None
    type: str


@dataclass(frozen=True)
class BridgeSettings:
    bridge: str
    controller: str  # e.g. tcp:127.0.0.1:6633
    datapath_type: str = ""  # "" leaves OVS's default; "netdev" for the userspace datapath
    tunnel_port: str | None = None  # created in tunnel mode (VXLAN, remote_ip=flow, key=flow)


class OvsdbWatcher:
    def __init__(self, remote: str, settings: BridgeSettings,
                 on_ports: Callable[[dict[str, OvsPort]], None],
                 schema: str = SCHEMA) -> None:
        helper = idl_module.SchemaHelper(schema)
        for table in ("Open_vSwitch", "Bridge", "Port", "Interface", "Controller"):
            helper.register_table(table)
        self.idl = idl_module.Idl(remote, helper)
        self.settings = settings
        self.on_ports = on_ports
        self._ports: dict[str, OvsPort] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ovsdb", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.idl.close()

    # ---------------------------------------------------------------- loop
    def _run(self) -> None:
        seqno = None
        while not self._stop.is_set():
            self.idl.run()
            if self.idl.change_seqno != seqno and self.idl.has_ever_connected():
                seqno = self.idl.change_seqno
                try:
                    self._reconcile()
                    self._report_ports()
                except Exception:
                    log.exception("ovsdb reconcile failed")
            poller = ovs.poller.Poller()
            self.idl.wait(poller)
            poller.timer_wait(500)
            poller.block()

    def _rows(self, table: str) -> list:
        return list(self.idl.tables[table].rows.values())

    def _bridge(self):  # type: ignore[no-untyped-def]
        return next((b for b in self._rows("Bridge") if b.name == self.settings.bridge), None)

    def _report_ports(self) -> None:
        bridge = self._bridge()
        ports: dict[str, OvsPort] = {}
        for port in bridge.ports if bridge is not None else []:
            for iface in port.interfaces:
                ofport = iface.ofport[0] if iface.ofport else -1
                if ofport > 0:
                    ports[iface.name] = OvsPort(iface.name, ofport,
                                                iface.external_ids.get("iface-id"),
                                                iface.type or "system")
        if ports != self._ports:
            self._ports = ports
            self.on_ports(ports)

    # ---------------------------------------------------------------- writes
    def _reconcile(self) -> None:
        """Bring the bridge to the settings the agent relies on, in one transaction."""
        s = self.settings
        txn = idl_module.Transaction(self.idl)
        changed = False
        bridge = self._bridge()
        if bridge is None:
            root = self._rows("Open_vSwitch")
            if not root:
                return
            bridge = txn.insert(self.idl.tables["Bridge"])
            bridge.name = s.bridge
            internal = self._insert_port(txn, s.bridge, "internal")
            bridge.ports = [internal]
            root[0].addvalue("bridges", bridge.uuid)
            changed = True
            log.info("creating bridge %s", s.bridge)
        wanted = {"protocols": ["OpenFlow13"], "fail_mode": ["secure"]}
        if s.datapath_type:
            wanted["datapath_type"] = s.datapath_type
        for column, value in wanted.items():
            if getattr(bridge, column) != value:
                setattr(bridge, column, value)
                changed = True
        other = dict(bridge.other_config)
        if other.get("disable-in-band") != "true":
            # In-band control with a loopback controller only produces warnings.
            other["disable-in-band"] = "true"
            bridge.other_config = other
            changed = True
        targets = [c.target for c in bridge.controller] if bridge.controller else []
        if targets != [s.controller]:
            controller = txn.insert(self.idl.tables["Controller"])
            controller.target = s.controller
            bridge.controller = [controller]
            changed = True
        if s.tunnel_port and not any(p.name == s.tunnel_port for p in bridge.ports):
            port = self._insert_port(txn, s.tunnel_port, "vxlan",
                                     {"remote_ip": "flow", "key": "flow"})
            bridge.addvalue("ports", port.uuid)
            changed = True
        if not changed:
            txn.abort()
            return
        status = self._commit(txn)
        log.info("bridge %s configured: %s", s.bridge,
                 idl_module.Transaction.status_to_string(status))

    def _insert_port(self, txn, name: str, kind: str,  # type: ignore[no-untyped-def]
                     options: dict[str, str] | None = None):
        iface = txn.insert(self.idl.tables["Interface"])
        iface.name = name
        iface.type = kind
        if options:
            iface.options = options
        port = txn.insert(self.idl.tables["Port"])
        port.name = name
        port.interfaces = [iface]
        return port

    def _commit(self, txn: idl_module.Transaction) -> int:
        while True:
            status = txn.commit()
            if status not in (idl_module.Transaction.INCOMPLETE,
                              idl_module.Transaction.UNCOMMITTED):
                return status
            self.idl.run()
            poller = ovs.poller.Poller()
            self.idl.wait(poller)
            txn.wait(poller)
            poller.block()
