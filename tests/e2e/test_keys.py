"""The lab's cloud runs with CURVE keys (lab/services.py), as every e2e test does: the
vnas, holding the agent key, take their slices, carry traffic and report their
switch's connection, and vnmgr refuses none of their requests, while a client
without a key, in the very same lab, gets nothing."""

from __future__ import annotations

import time

import pytest

from lab import Lab
from lab.cloud import Cloud
from lab.proc import wait_for
from vnet.errors import ApiError
from vnet.messaging import RpcClient


def test_agents_work_with_their_keys_and_a_keyless_client_gets_nothing(
        e2e_environment: None) -> None:
    with Lab() as lab:
        cloud = Cloud(lab).start()
        keys_dir = cloud.services.keys_dir
        assert keys_dir is not None and (keys_dir / "agent.key_secret").is_file()
        cloud.add_two_routed_networks()
        cloud.add_vm("h1", "vm1", "nw-a", "10.1.0.11")
        cloud.add_vm("h2", "vm4", "nw-b", "10.2.0.14")
        cloud.wait_ping("vm1", "10.2.0.14", timeout=15)  # slices and events reached both
        for host in cloud.hosts.values():
            assert host.vna is not None
            assert host.vna.env["VNET_MESSAGING_KEYS_DIR"] == str(keys_dir)
            assert "VNET_MESSAGING_CLIENT_KEY" not in host.vna.env  # the vna's own: agent
        assert cloud.api is not None
        api = cloud.api
        # A vna reports its switch's connection with the agent key: allowed, applied.
        wait_for(lambda: all(api.get(f"datapaths/dp-{name}")["is_connected"]
                             for name in cloud.hosts), 10, interval=0.2,
                 what="every datapath is_connected")
        agents = cloud.services.rpc().call("agents")["agents"]
        assert set(agents) == {host.node_id for host in cloud.hosts.values()}
        assert cloud.vnmgr is not None
        vnmgr_log = cloud.vnmgr.log_text()
        assert f"keys={keys_dir}" in vnmgr_log
        assert "refused op=" not in vnmgr_log  # no vna request was outside its role
        started = time.monotonic()
        with pytest.raises(ApiError) as err:
            RpcClient(cloud.services.rpc_endpoint, 1000).call("health")
        assert err.value.status == 503 and time.monotonic() - started >= 1.0
