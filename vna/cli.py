"""`vna`: the edge agent for one Open vSwitch bridge."""

from __future__ import annotations

import logging
import os
import signal
import threading

from vna import malloc
from vnet.keys import AGENT, KeysError, client_keys
from vnet.messaging import RpcClient
from vnet.metrics import serve as serve_metrics
from vnet.runtime import on_sigterm, service_config

log = logging.getLogger("vna")


def lean_imports() -> None:
    """Keep what the vna never runs out of its imports; call before os-ken and python-ovs
    are imported (main does)."""
    # python-ovs imports eventlet (to ask whether select is monkey-patched; os-ken's hub is
    # native threads here), and eventlet then imports its green DNS resolver: a second,
    # patched copy of dnspython, 14.5 MiB of RSS.  The vna resolves no names; its DNS
    # features use the plain dnspython.  An EVENTLET_NO_GREENDNS already set wins.
    os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")


def main(argv: list[str] | None = None) -> int:
    lean_imports()
    # Before any thread starts. The snapshot is decoded on the link thread and the flows
    # built on the agent's: with an arena per thread, what one frees the other cannot
    # reuse (4.5 MiB more peak RSS at 10,000 interfaces, 11 without vna.agent's trims).
    malloc.limit_arenas(1)
    config = service_config("vna", "vna", "wakame-vnet edge agent", argv)

    # os-ken reads its own options at import time; import it only once logging is set.
    from os_ken import cfg
    from os_ken.base.app_manager import AppManager

    from vna.agent import Agent
    from vna.meters import DEFAULT_BURST_PACKETS, DEFAULT_RATE_PPS, MeterConfig
    from vna.metrics import registry
    from vna.ovsdb import BridgeSettings, OvsdbWatcher
    from vna.switch import VnaOpenFlowApp
    from vna.vnmgr_link import VnmgrLink

    transport = config.get("vna", "transport", "tunnel")
    if transport not in ("tunnel", "mac2mac"):
        raise SystemExit(f"vna: [vna] transport must be tunnel or mac2mac, not {transport!r}")
    node_id = config.get("vna", "node_id")
    of_host, of_port = config.get("vna", "of_host", "127.0.0.1"), config.get_int("vna", "of_port")
    tunnel_port = config.get("vna", "tunnel_port", "vnet-vxlan") if transport == "tunnel" else None
    try:
        keys = client_keys(config, AGENT)  # a vna holds the agent key unless told otherwise
    except KeysError as exc:
        raise SystemExit(f"vna: {exc}") from None
    rpc = RpcClient(config.get("messaging", "rpc_endpoint"),
                    config.get_int("messaging", "rpc_timeout_ms", 5000), keys=keys)

    meters = MeterConfig(rate=config.get_int("vna", "punt_meter_rate", DEFAULT_RATE_PPS),
                         burst=config.get_int("vna", "punt_meter_burst", DEFAULT_BURST_PACKETS))
    wire_cache = config.get("vna", "wire_cache", "true").strip().lower()
    if wire_cache not in ("true", "false"):
        raise SystemExit(f"vna: [vna] wire_cache must be true or false, not {wire_cache!r}")
    agent = Agent(node_id, transport, tunnel_port, rpc, meters,
                  wire_cache=wire_cache == "true")
    link = VnmgrLink(rpc, config.get("messaging", "pub_endpoint"), agent.deliver, agent.status,
                     node_id=node_id)
    agent.on_watch = link.set_watch
    agent.on_status_change = link.report_now
    settings = BridgeSettings(bridge=config.get("vna", "bridge", "br-int"),
                              controller=f"tcp:{of_host}:{of_port}",
                              datapath_type=config.get("vna", "datapath_type", ""),
                              tunnel_port=tunnel_port)
    ovsdb = OvsdbWatcher(config.get("vna", "ovsdb"), settings, agent.on_ports)
    VnaOpenFlowApp.listener = agent

    metrics = serve_metrics(config.get("vna", "metrics_host", "127.0.0.1"),
                            config.get("vna", "metrics_port", ""),
                            registry(agent, link, VnaOpenFlowApp.packet_ins))

    def stop() -> None:
        # Flows stay installed (fail_mode=secure): traffic keeps flowing while we are away.
        log.info("vna stopping; installed flows are left in place")
        link.stop()
        ovsdb.stop()
        agent.stop()
        if metrics is not None:
            metrics.shutdown()
        logging.shutdown()
        os._exit(0)

    on_sigterm(stop)
    # Fault injection for tests and drills: SIGUSR1 toggles dropping vnmgr's events, as a
    # lossy network would; the agent must notice the gap and resync on resume.
    signal.signal(signal.SIGUSR1, lambda *_: _toggle(link.paused))
    cfg.CONF(args=[], project="os_ken")
    cfg.CONF.ofp_listen_host = of_host
    cfg.CONF.ofp_tcp_listen_port = of_port
    agent.start()
    link.start()
    ovsdb.start()
    log.info("vna %s: bridge %s, OpenFlow on %s:%d, transport %s", node_id, settings.bridge,
             of_host, of_port, transport)
    AppManager.run_apps(["vna.switch"])
    return 0


def _toggle(flag: threading.Event) -> None:
    if flag.is_set():
        flag.clear()
        log.warning("resuming reception of vnmgr events")
    else:
        flag.set()
        log.warning("dropping vnmgr events until the next SIGUSR1")
