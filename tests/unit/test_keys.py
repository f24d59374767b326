"""CURVE keys on disk (`vnmgr keys init`, vnet.keys) and the role table (vnmgr.roles).
The keys at work between real processes are tested in tests/api/test_keys.py."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from zmq.utils import z85

from lab.services import find_program
from vnet.config import load_config
from vnet.keys import (
    AGENT,
    ROLES,
    SERVER,
    WEBAPI,
    KeysError,
    client_keys,
    init_keys,
    load_client,
    load_server,
)
from vnmgr import cli as vnmgr_cli
from vnmgr.roles import RoleAuthenticator, refusal


@pytest.fixture(autouse=True)
def root_logging() -> Iterator[None]:
    """The CLIs set the root logger up as a service's (vnet.runtime): undo it after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_a_server_pair_and_one_pair_per_role_private(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    written = init_keys(directory)
    names = {p.name for p in written}
    assert names == {f"{n}{s}" for n in (SERVER, *ROLES) for s in (".key", ".key_secret")}
    assert mode(directory) == 0o700
    assert {mode(p) for p in written} == {0o600}
    server = load_server(directory)
    assert set(server.roles.values()) == {WEBAPI, AGENT}
    agent = load_client(directory, AGENT)
    assert agent.server_public == server.public
    assert server.roles[agent.public.decode()] == AGENT


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    init_keys(tmp_path)
    before = (tmp_path / "agent.key_secret").read_bytes()
    with pytest.raises(KeysError, match="already there.*--force"):
        init_keys(tmp_path)
    assert (tmp_path / "agent.key_secret").read_bytes() == before
    init_keys(tmp_path, force=True)
    assert (tmp_path / "agent.key_secret").read_bytes() != before


def test_vnmgr_keys_init_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VNET_MESSAGING_KEYS_DIR", str(tmp_path / "k"))
    assert vnmgr_cli.main(["keys", "init"]) == 0
    assert mode(tmp_path / "k" / "server.key_secret") == 0o600
    secret = (tmp_path / "k" / "server.key_secret").read_bytes()
    assert vnmgr_cli.main(["keys", "init"]) == 2  # refused: keys exist
    assert (tmp_path / "k" / "server.key_secret").read_bytes() == secret
    assert vnmgr_cli.main(["keys", "init", "--force"]) == 0
    assert (tmp_path / "k" / "server.key_secret").read_bytes() != secret
    monkeypatch.setenv("VNET_MESSAGING_KEYS_DIR", "")
    assert vnmgr_cli.main(["keys", "init"]) == 2  # nowhere to write them
    (tmp_path / "file").write_text("")
    for where in (tmp_path / "file", tmp_path / "file" / "below"):  # no traceback: exit 2
        assert vnmgr_cli.main(["keys", "init", "--keys-dir", str(where)]) == 2


def test_missing_keys_and_bad_roles_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(KeysError, match="server.key is missing: run `vnmgr keys init`"):
        load_client(tmp_path, AGENT)
    init_keys(tmp_path)
    with pytest.raises(KeysError, match="client_key must be one of webapi, agent, not 'admin'"):
        load_client(tmp_path, "admin")
    (tmp_path / "webapi.key_secret").unlink()  # as on a host that is no webapi's
    with pytest.raises(KeysError, match="webapi.key_secret is missing"):
        load_client(tmp_path, WEBAPI)
    assert WEBAPI in load_server(tmp_path).roles.values()  # vnmgr needs only webapi.key ...
    (tmp_path / "webapi.key").unlink()
    with pytest.raises(KeysError, match="webapi.key is missing"):
        load_server(tmp_path)  # ... and refuses to start without a role's public key


def test_no_curve_in_libzmq_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zmq, "has", lambda capability: capability != "curve")
    with pytest.raises(KeysError, match="no CURVE support"):
        init_keys(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_service_takes_its_own_role_unless_configured(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VNET_MESSAGING_KEYS_DIR", "")
    assert client_keys(load_config(), AGENT) is None  # keys off
    init_keys(tmp_path)
    monkeypatch.setenv("VNET_MESSAGING_KEYS_DIR", str(tmp_path))
    monkeypatch.setenv("VNET_MESSAGING_CLIENT_KEY", "")
    assert client_keys(load_config(), AGENT).role == AGENT  # type: ignore[union-attr]
    monkeypatch.setenv("VNET_MESSAGING_CLIENT_KEY", "webapi")
    keys = client_keys(load_config(), AGENT)
    assert keys is not None and keys.role == WEBAPI
    assert keys.public == load_client(tmp_path, WEBAPI).public


def request(op: str, resource: str | None = None, **params: Any) -> dict[str, Any]:
    return {"op": op, "resource": resource, "uuid": "x", "params": params}


@pytest.mark.parametrize("allowed", [
    request("snapshot", node_id="vna1"), request("watch", node_id="vna1"),
    request("agent_status", node_id="vna1"), request("health"),
    request("report", "active_interfaces", datapath_uuid="dp-1", ports=[]),
])
def test_an_agent_reads_and_reports(allowed: dict[str, Any]) -> None:
    assert refusal(AGENT, allowed) is None


@pytest.mark.parametrize("refused", [
    request("create", "networks", uuid="nw-1"), request("delete", "interfaces"),
    request("update", "datapaths", is_connected="true"),  # vnmgr.liveness sets it
    request("update", "datapaths", is_connected="true", node_id="evil"),
    request("update", "datapaths"), request("update", "interfaces", is_connected="true"),
    request("report", "datapaths"), request("agents"), request("nonsense", "networks"),
])
def test_an_agent_never_writes_the_model(refused: dict[str, Any]) -> None:
    error = refusal(AGENT, refused)
    assert error is not None and error.status == 403 and error.error == "forbidden"
    assert error.field == "op"
    assert error.message.startswith(f"role agent may not {refused['op']}")


def test_the_webapi_role_and_keys_off_may_do_everything() -> None:
    for role in (WEBAPI, None):
        assert refusal(role, request("create", "networks", uuid="nw-1")) is None
        assert refusal(role, request("agents")) is None
    assert refusal("stranger", request("health")) is not None  # an unmapped role: nothing


def test_the_authenticator_admits_known_keys_under_their_role(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    init_keys(tmp_path)
    authenticator = RoleAuthenticator(zmq.Context.instance(), load_server(tmp_path))
    agent = load_client(tmp_path, AGENT)
    assert authenticator.callback("vnet", agent.public) is True
    assert authenticator.curve_user_id(z85.decode(agent.public)) == AGENT
    stranger, _ = zmq.curve_keypair()
    with caplog.at_level("WARNING", logger="vnmgr.auth"):
        for _ in range(20):  # a refused client retrying every 100 ms
            assert authenticator.callback("vnet", stranger) is False
    assert [r.getMessage() for r in caplog.records] == [
        f"refused a CURVE client with an unknown key {stranger.decode()}"]


def test_services_refuse_to_start_with_a_keys_dir_lacking_keys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Not silently in the clear, and naming the missing file and the command to run."""
    monkeypatch.setenv("VNET_MESSAGING_KEYS_DIR", str(tmp_path))
    monkeypatch.setenv("VNET_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert vnmgr_cli.main([]) == 2
    assert "server.key_secret is missing: run `vnmgr keys init`" in capsys.readouterr().err
    assert not (tmp_path / "db.sqlite3").exists()  # refused before touching anything
    # The clients as installed (the vna's os-ken must not load into this test process).
    for program in ("vnet-webapi", "vna"):
        result = subprocess.run([find_program(program)], capture_output=True, text=True,
                                timeout=60, env={**os.environ, "VNET_WEBAPI_PORT": "1"})
        assert result.returncode == 1, (program, result.stderr)
        assert "server.key is missing: run `vnmgr keys init`" in result.stderr, program
