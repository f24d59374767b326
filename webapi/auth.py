"""Bearer-token authentication of the HTTP API (`[webapi] auth = token`).

Tokens live in `[webapi] tokens_file`, one per line as `<token> <role>`; blank lines
and lines starting with `#` are ignored. Roles: `admin` may do anything, `reader` only
GET (and HEAD/OPTIONS). A missing, malformed or unknown token is a 401 with
`WWW-Authenticate: Bearer`; a reader writing is a 403. Tokens are compared in constant
time and never logged or echoed.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, request

from vnet.config import Config
from webapi.ui import FILES as UI_FILES

MODES = ("none", "token")
ROLES = ("admin", "reader")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Answered without a token: a liveness/readiness probe (a kubelet, a load balancer)
# carries no credentials, and health says only ok, degraded (with the disconnected
# datapaths' uuids) or unavailable, and a sequence number; the topology page's static
# files hold no data (the page asks for a token and sends it with its API calls), and
# a browser loads them without an Authorization header ("/ui" redirects to "/ui/").
OPEN_PATHS = frozenset({"/api/1.0/health", "/ui", *(f"/ui/{url}" for url in UI_FILES)})
CHALLENGE = 'Bearer realm="wakame-vnet"'

log = logging.getLogger("webapi")


class AuthConfigError(ValueError):
    """The auth settings or the tokens file are unusable; the message names the key or
    the file and line (never the token itself)."""


@dataclass(frozen=True)
class Token:
    secret: bytes  # utf-8 of the token, compared with hmac.compare_digest
    role: str


@dataclass(frozen=True)
class Auth:
    """`tokens` is None when auth is off (`[webapi] auth = none`)."""

    tokens: tuple[Token, ...] | None

    @property
    def enabled(self) -> bool:
        return self.tokens is not None

    def role_of(self, given: str) -> str | None:
        """The role of `given`, or None. Every token is compared (no early exit), each in
        constant time, so the answer's timing says nothing about which one matched."""
        candidate = given.encode()
        role = None
        for token in self.tokens or ():
            if hmac.compare_digest(candidate, token.secret):
                role = token.role
        return role


def parse_tokens(text: str, source: str) -> tuple[Token, ...]:
    """Tokens from the text of a tokens file; AuthConfigError names `source:line` of the
    first bad line: not two words, an unknown role, or a token already given."""
    tokens: list[Token] = []
    first_line: dict[bytes, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        where = f"{source}:{number}"
        if len(words) != 2:
            raise AuthConfigError(f"{where}: expected '<token> <role>', got {len(words)} "
                                  f"word(s)")
        secret, role = words[0].encode(), words[1]
        if role not in ROLES:
            raise AuthConfigError(f"{where}: unknown role {role!r} (one of: "
                                  f"{', '.join(ROLES)})")
        if secret in first_line:
            raise AuthConfigError(f"{where}: duplicate token (first on line "
                                  f"{first_line[secret]})")
        first_line[secret] = number
        tokens.append(Token(secret, role))
    if not tokens:
        raise AuthConfigError(f"{source}: no tokens (auth = token would refuse everyone)")
    return tuple(tokens)


def load_auth(config: Config) -> Auth:
    """`[webapi] auth` and, for `token`, the tokens of `[webapi] tokens_file`. Raises
    AuthConfigError for an unknown mode, no or an unreadable file, or a bad line."""
    mode = config.get("webapi", "auth", "none").strip()
    if mode not in MODES:
        raise AuthConfigError(f"[webapi] auth = {mode!r}: expected one of {', '.join(MODES)}")
    if mode == "none":
        return Auth(None)
    path = config.get("webapi", "tokens_file", "").strip()
    if not path:
        raise AuthConfigError("[webapi] auth = token needs [webapi] tokens_file")
    try:
        text = Path(path).read_text()
        permissions = Path(path).stat().st_mode & 0o777
    except (OSError, UnicodeDecodeError) as exc:
        raise AuthConfigError(f"[webapi] tokens_file {path}: {exc}") from None
    if permissions & 0o077:
        # Not fatal (a group may be how an operator shares it), but worth saying.
        log.warning("[webapi] tokens_file %s is readable by others (mode %o): chmod 600 it",
                    path, permissions)
    return Auth(parse_tokens(text, path))


def _refusal(status: int, error: str, message: str) -> Any:
    body = {"error": error, "message": message, "field": "Authorization"}
    if status == 401:
        detail = "" if error == "missing_token" else ', error="invalid_token"'
        return body, status, {"WWW-Authenticate": CHALLENGE + detail}
    return body, status


def install(app: Flask, auth: Auth) -> None:
    """Check every request's token before its view runs (and before routing errors, so
    an unauthenticated client learns nothing about which paths exist)."""
    if not auth.enabled:
        return

    def check() -> Any:
        if request.path in OPEN_PATHS:
            return None
        header = request.headers.get("Authorization")
        if header is None:
            return _refusal(401, "missing_token", "this API needs 'Authorization: Bearer "
                                                  "<token>'")
        words = header.split()
        if len(words) != 2 or words[0].lower() != "bearer":
            return _refusal(401, "invalid_token", "the Authorization header must be "
                                                  "'Bearer <token>'")
        role = auth.role_of(words[1])
        if role is None:
            return _refusal(401, "invalid_token", "unknown token")
        if role != "admin" and request.method not in READ_METHODS:
            return _refusal(403, "forbidden", f"the {role} role may only read (GET)")
        return None

    app.before_request(check)
