"""Makes the switch hold exactly the desired per-port meters (vna.meters), by diff.

On a (re)connect the installed meters are read with a meter config multipart request
(OpenFlow 1.3 section 7.3.5.13) and diffed; between reconnects the syncer remembers what
it installed.  Additions and modifications go before the flow changes (a flow naming a
missing meter is rejected), deletions after them (OVS deletes every flow using a deleted
meter), each meter by its own id - never OFPM_ALL.

Meter mods cannot go in an ONF bundle, so they are sent one by one and checked with a
barrier.  A rejected meter mod is logged and counted, not raised: no flow may depend on
a meter the switch lacks (that flow's bundle would fail and force a full resync, which
retries the meters), and a switch without meter support must still get its flows.
"""

from __future__ import annotations

import logging

from vna.meters import MeterConfig, MeterPlan, MeterSpec, desired_meters, plan
from vna.ofmsg import meter_delete, meter_from_stats, meter_mod
from vna.switch import SwitchConnection, SwitchError
from vna.view import View

log = logging.getLogger("vna.meters")


class MeterSyncer:
    def __init__(self, config: MeterConfig | None = None) -> None:
        self.config = config or MeterConfig()
        # meter id -> spec (None: not a shape vna writes); None: unknown, read it first.
        self.installed: dict[int, MeterSpec | None] | None = None
        self.meter_mods_sent = 0
        self.failures = 0

    def before_flows(self, connection: SwitchConnection, view: View | None,
                     full: bool = False) -> MeterPlan:
        """Add and modify meters for `view`; returns the plan, whose deletions
        `after_flows` sends.  full: re-read the switch's meters first."""
        try:
            if full or self.installed is None:
                self.installed = {stat.meter_id: meter_from_stats(stat, connection.ofp)
                                  for stat in connection.dump_meters()}
            todo = plan(desired_meters(view, self.config), self.installed)
            dp = connection.datapath
            self._send(connection, [meter_mod(s, dp) for s in todo.add]
                       + [meter_mod(s, dp, modify=True) for s in todo.modify])
            self.installed.update({s.meter_id: s for s in [*todo.add, *todo.modify]})
        except SwitchError as exc:
            self._failed(connection, exc)
            return MeterPlan()
        if full or todo:
            log.info("meters of %016x: %d desired, +%d ~%d -%d", connection.dpid,
                     len(self.installed) - len(todo.delete), len(todo.add), len(todo.modify),
                     len(todo.delete))
        return todo

    def after_flows(self, connection: SwitchConnection, todo: MeterPlan) -> None:
        """Delete the meters `todo` found stale, once no desired flow uses them."""
        try:
            self._send(connection, [meter_delete(i, connection.datapath) for i in todo.delete])
        except SwitchError as exc:
            self._failed(connection, exc)
            return
        for meter_id in todo.delete:
            if self.installed is not None:
                self.installed.pop(meter_id, None)

    def forget(self) -> None:
        """The switch connection changed: what it holds is unknown until read again."""
        self.installed = None

    def _send(self, connection: SwitchConnection, messages: list) -> None:
        connection.send_checked(messages)
        self.meter_mods_sent += len(messages)

    def _failed(self, connection: SwitchConnection, exc: SwitchError) -> None:
        self.failures += 1
        self.installed = None
        log.error("meter sync of %016x failed (%s); punting flows would be rejected",
                  connection.dpid, exc)
