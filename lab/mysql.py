"""A throw-away MariaDB database per lab, for the MySQL backend runs of tests and bench.

scripts/setup.sh creates the user vnet/vnet with rights on `vnet%` databases over TCP,
which works both where root has no password and where root may only use the socket.
An unreachable server raises: a skipped MySQL run is how MySQL-only bugs ship.
"""

from __future__ import annotations

import os
import secrets

import pymysql

from lab.hosts import Lab

SERVER = {
    "host": os.environ.get("VNET_TEST_MYSQL_HOST", "127.0.0.1"),
    "user": os.environ.get("VNET_TEST_MYSQL_USER", "vnet"),
    "password": os.environ.get("VNET_TEST_MYSQL_PASSWORD", "vnet"),
}


def create_mysql_database(lab: Lab) -> str:
    """Create `vnet_test_<random>`, drop it when the lab closes; returns its URL."""
    name = f"vnet_test_{secrets.token_hex(6)}"
    with pymysql.connect(**SERVER) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")

    def drop() -> None:
        with pymysql.connect(**SERVER) as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")

    # Registered first, so it runs last: after the services have stopped using it.
    lab.on_close(drop)
    return (f"mysql+pymysql://{SERVER['user']}:{SERVER['password']}@{SERVER['host']}/{name}"
            "?charset=utf8mb4")
