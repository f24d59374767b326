"""Running vnmgr's handlers without processes (the `session` fixture is in conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from vnet.errors import ApiError
from vnet.serialize import Row
from vnmgr.handlers import HANDLERS, Tx
from vnmgr.params import Params


def call(session: Session, op: str, resource: str, target: str | None = None,
         **params: Any) -> Row:
    """One handler as vnmgr runs it: `target` is the uuid in the URL, params the body."""
    return HANDLERS[(op, resource)](Tx(session), target, Params(params))


def refused(session: Session, op: str, resource: str, target: str | None = None,
            **params: Any) -> ApiError:
    """The ApiError the handler raises (the test fails when it raises none)."""
    with pytest.raises(ApiError) as caught:
        call(session, op, resource, target, **params)
    return caught.value
