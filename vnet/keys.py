"""ZeroMQ CURVE keys of vnmgr and its clients, and the role each client key carries.

`[messaging] keys_dir` holds, as written by `vnmgr keys init` (pyzmq's certificate
files, `zmq.auth.create_certificates`):

- `server.key` / `server.key_secret`: vnmgr's key pair (its request and publish
  sockets are CURVE servers);
- `<role>.key` / `<role>.key_secret` for each role in `ROLES`: the client key pairs.

vnmgr needs its own pair and the clients' public keys; a client needs `server.key` and
its own pair. With keys_dir empty, messaging is in the clear (docs/messaging.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

from vnet.config import Config

SERVER = "server"
WEBAPI, AGENT = "webapi", "agent"
# webapi writes the model; an agent reads its slice and reports (vnmgr.roles).
ROLES = (WEBAPI, AGENT)
# The ZAP domain vnmgr's sockets declare; the authenticator serves it.
ZAP_DOMAIN = "vnet"


class KeysError(RuntimeError):
    """Keys are configured but unusable: missing files, no CURVE in libzmq, bad role."""


def require_curve() -> None:
    """Raise KeysError unless this libzmq was built with CURVE (libsodium)."""
    if not zmq.has("curve"):
        raise KeysError(f"keys_dir is set but libzmq {zmq.zmq_version()} has no CURVE "
                        "support (build it with libsodium, or leave [messaging] keys_dir empty)")


def keys_dir(config: Config) -> Path | None:
    """`[messaging] keys_dir`, or None when it is empty (no encryption, no roles)."""
    value = config.get("messaging", "keys_dir", "").strip()
    return Path(value) if value else None


def init_keys(directory: Path, force: bool = False) -> list[Path]:
    """Write the server pair and one pair per role into `directory` (made 0700; every
    file 0600). Returns the files written. Raises KeysError if a key file exists and
    `force` is false: replacing keys locks out every process still holding the old ones.
    """
    require_curve()
    names = (SERVER, *ROLES)
    existing = [directory / f"{name}{suffix}" for name in names
                for suffix in (".key", ".key_secret")
                if (directory / f"{name}{suffix}").exists()]
    if existing and not force:
        raise KeysError(f"{', '.join(str(p) for p in existing)}: already there; "
                        "--force replaces them")
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
    except OSError as exc:  # a file in the way, a read-only or virtual file system
        raise KeysError(f"cannot make the keys directory {directory}: "
                        f"{exc.strerror or exc}") from None
    written: list[Path] = []
    for name in names:
        for path in (directory / f"{name}.key", directory / f"{name}.key_secret"):
            path.unlink(missing_ok=True)
        # The umask makes the files 0600 from their creation: the secret is never readable
        # by others, not even between creation and chmod.
        old_umask = os.umask(0o177)
        try:
            public, secret = zmq.auth.create_certificates(str(directory), name)
        finally:
            os.umask(old_umask)
        for path in (Path(public), Path(secret)):
            os.chmod(path, 0o600)
            written.append(path)
    return written


def _load(directory: Path, name: str, secret: bool) -> tuple[bytes, bytes | None]:
    path = directory / (f"{name}.key_secret" if secret else f"{name}.key")
    if not path.is_file():
        raise KeysError(f"{path} is missing: run `vnmgr keys init` (keys_dir {directory})")
    try:
        public, secret_key = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise KeysError(f"{path} is not a ZeroMQ certificate: {exc}") from None
    if secret and not secret_key:
        raise KeysError(f"{path} holds no secret key")
    return public, secret_key


@dataclass(frozen=True)
class ClientKeys:
    """A client's CURVE settings: vnmgr's public key and the client's own pair (Z85)."""

    role: str
    server_public: bytes
    public: bytes
    secret: bytes

    def apply(self, socket: zmq.Socket) -> None:
        """Make `socket` a CURVE client of vnmgr; call before connect()."""
        socket.curve_serverkey = self.server_public
        socket.curve_publickey = self.public
        socket.curve_secretkey = self.secret


def load_client(directory: Path, role: str) -> ClientKeys:
    """The key pair of `role` (one of ROLES) and vnmgr's public key; KeysError if absent."""
    require_curve()
    if role not in ROLES:
        raise KeysError(f"[messaging] client_key must be one of {', '.join(ROLES)}, "
                        f"not {role!r}")
    server_public, _ = _load(directory, SERVER, secret=False)
    public, secret = _load(directory, role, secret=True)
    assert secret is not None
    return ClientKeys(role, server_public, public, secret)


def client_keys(config: Config, default_role: str) -> ClientKeys | None:
    """The keys a client process uses: None when keys_dir is empty, else the pair of
    `[messaging] client_key` (empty: `default_role`, the service's own)."""
    directory = keys_dir(config)
    if directory is None:
        return None
    role = config.get("messaging", "client_key", "").strip() or default_role
    return load_client(directory, role)


@dataclass(frozen=True)
class ServerKeys:
    """vnmgr's pair and the role of each known client public key (Z85, as ZAP gives it)."""

    public: bytes
    secret: bytes
    roles: dict[str, str]

    def apply(self, socket: zmq.Socket) -> None:
        """Make `socket` a CURVE server authenticated by ZAP_DOMAIN; call before bind()."""
        socket.curve_secretkey = self.secret
        socket.curve_publickey = self.public
        socket.curve_server = True
        socket.zap_domain = ZAP_DOMAIN.encode()


def load_server(directory: Path) -> ServerKeys:
    """vnmgr's pair and every role's public key from `directory`; KeysError if one is
    missing (an unknown role would be refused anyway; a missing one is a setup error)."""
    require_curve()
    public, secret = _load(directory, SERVER, secret=True)
    assert secret is not None
    roles = {_load(directory, role, secret=False)[0].decode("ascii"): role for role in ROLES}
    return ServerKeys(public, secret, roles)
