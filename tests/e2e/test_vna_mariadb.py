"""The same system with the model in MariaDB instead of the embedded SQLite.

One routed and one switched scenario across two hosts, provisioned over HTTP, with
vnmgr and webapi on a fresh MariaDB database: the backend must not change what the
data plane does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from lab import Lab
from lab.cloud import Cloud
from lab.mysql import create_mysql_database


@pytest.fixture
def cloud_on_mariadb(e2e_environment: None) -> Iterator[Cloud]:
    with Lab() as lab:
        cloud = Cloud(lab, database_url=create_mysql_database(lab)).start()
        cloud.add_two_routed_networks()
        cloud.add_vm("h1", "vm1", "nw-a", "10.1.0.11")
        cloud.add_vm("h2", "vm2", "nw-a", "10.1.0.12")
        cloud.add_vm("h2", "vm4", "nw-b", "10.2.0.14")
        yield cloud


def test_switched_and_routed_traffic_with_the_model_in_mariadb(cloud_on_mariadb: Cloud) -> None:
    cloud = cloud_on_mariadb
    assert cloud.database_url and cloud.database_url.startswith("mysql+pymysql://")
    cloud.wait_ping("vm1", "10.1.0.12", timeout=10)
    assert cloud.vms["vm1"].ping("10.1.0.12", count=3, interval=0.1).ttls == [64, 64, 64]
    assert cloud.vms["vm1"].ping("10.2.0.14", count=3, interval=0.1).ttls == [63, 63, 63]
    transfer = cloud.vms["vm1"].tcp_transfer(cloud.vms["vm4"], 2 * 1024 * 1024)
    assert transfer.ok, transfer
    cloud.api.delete("routes/r-r1p2")
    time.sleep(0.5)  # the change reaches the vnas asynchronously
    assert cloud.vms["vm1"].ping("10.2.0.14", count=2, interval=0.2, wait=0.5).received == 0
