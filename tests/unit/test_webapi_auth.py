"""webapi's start-up checks: tokens file, auth mode, insecure bind (no process started;
tests/api/test_auth.py drives the running service)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from vnet.config import REPO_CONF_DIR, load_config
from webapi.auth import AuthConfigError, load_auth, parse_tokens
from webapi.server import SettingsError, is_loopback, load_settings

SECRET = "s3cr3t-admin-token"


def settings_of(monkeypatch: pytest.MonkeyPatch, **webapi: str):
    for key, value in webapi.items():
        monkeypatch.setenv(f"VNET_WEBAPI_{key.upper()}", value)
    return load_settings(load_config(str(REPO_CONF_DIR)))


def tokens_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "tokens"
    path.write_text(text)
    return str(path)


def test_tokens_file_roles_comments_and_blank_lines() -> None:
    tokens = parse_tokens(f"# operators\n\n{SECRET} admin\n  ro-token   reader  \n", "f")
    assert [(t.secret, t.role) for t in tokens] == [(SECRET.encode(), "admin"),
                                                    (b"ro-token", "reader")]


@pytest.mark.parametrize(("text", "message"), [
    (f"{SECRET} admin\nother root\n", "f:2: unknown role 'root' (one of: admin, reader)"),
    (f"{SECRET} admin\n   admin\n", "f:2: expected '<token> <role>', got 1 word(s)"),
    (f"{SECRET}\n", "f:1: expected '<token> <role>', got 1 word(s)"),
    (f"{SECRET} admin extra\n", "f:1: expected '<token> <role>', got 3 word(s)"),
    (f"# c\n{SECRET} admin\nx reader\n{SECRET} reader\n",
     "f:4: duplicate token (first on line 2)"),
    ("# nothing but comments\n\n", "f: no tokens"),
])
def test_bad_tokens_file_names_the_line_not_the_token(text: str, message: str) -> None:
    with pytest.raises(AuthConfigError) as caught:
        parse_tokens(text, "f")
    assert str(caught.value).startswith(message)
    assert SECRET not in str(caught.value)


def test_auth_mode_and_tokens_file_settings(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("VNET_WEBAPI_AUTH", "basic")
    with pytest.raises(AuthConfigError, match=r"\[webapi\] auth = 'basic'"):
        load_auth(load_config(str(REPO_CONF_DIR)))
    monkeypatch.setenv("VNET_WEBAPI_AUTH", "token")
    monkeypatch.setenv("VNET_WEBAPI_TOKENS_FILE", "")
    with pytest.raises(AuthConfigError, match=r"needs \[webapi\] tokens_file"):
        load_auth(load_config(str(REPO_CONF_DIR)))
    monkeypatch.setenv("VNET_WEBAPI_TOKENS_FILE", str(tmp_path / "absent"))
    with pytest.raises(AuthConfigError, match="absent"):
        load_auth(load_config(str(REPO_CONF_DIR)))
    path = tokens_file(tmp_path, f"{SECRET} admin\n")
    monkeypatch.setenv("VNET_WEBAPI_TOKENS_FILE", path)
    Path(path).chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="webapi"):
        load_auth(load_config(str(REPO_CONF_DIR)))
    assert f"tokens_file {path} is readable by others (mode 644)" in caplog.text
    Path(path).chmod(0o600)
    caplog.clear()
    auth = load_auth(load_config(str(REPO_CONF_DIR)))
    assert caplog.text == ""
    assert auth.enabled and auth.role_of(SECRET) == "admin"
    assert auth.role_of(SECRET[:-1]) is None and auth.role_of("") is None
    assert auth.role_of("tökén") is None  # not ASCII: still compared, never a TypeError


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.0.2.7", False),
    ("api.example.com", False),
])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_insecure_bind_is_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    assert not settings_of(monkeypatch).auth.enabled  # the shipped default: loopback, none
    with pytest.raises(SettingsError, match=r"host = 0.0.0.0 is not a loopback address"):
        settings_of(monkeypatch, host="0.0.0.0")
    assert settings_of(monkeypatch, host="0.0.0.0", allow_insecure="true").host == "0.0.0.0"
    with pytest.raises(SettingsError, match=r"allow_insecure = 'maybe'"):
        settings_of(monkeypatch, host="0.0.0.0", allow_insecure="maybe")
    secured = settings_of(monkeypatch, host="0.0.0.0", allow_insecure="false", auth="token",
                          tokens_file=tokens_file(tmp_path, f"{SECRET} admin\n"))
    assert secured.auth.enabled


@pytest.mark.parametrize(("key", "value", "message"), [
    ("workers", "0", r"\[webapi\] workers = 0: must be at least 1"),
    ("threads", "many", r"\[webapi\] threads = 'many': not an integer"),
    ("graceful_timeout", "-1", r"\[webapi\] graceful_timeout = -1: must be at least 1"),
    ("port", "70000", r"\[webapi\] port = 70000: must be at most 65535"),
    ("max_body_bytes", "0", r"\[webapi\] max_body_bytes = 0: must be at least 1"),
])
def test_bad_server_settings(monkeypatch: pytest.MonkeyPatch, key: str, value: str,
                             message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        settings_of(monkeypatch, **{key: value})
