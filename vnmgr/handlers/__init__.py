"""vnmgr's write handlers, one module per resource family.

Importing this package imports every module, which registers its handlers in HANDLERS:
(op, resource) -> handler(tx, uuid, params) -> row (see tx.py).
"""

from vnmgr.handlers import (  # noqa: F401  (imported to register their handlers)
    bindings,
    datapaths,
    filters,
    interfaces,
    joins,
    leases,
    networks,
    routers,
    security_groups,
    services,
    translation_addresses,
    translations,
)
from vnmgr.handlers.tx import HANDLERS, Handler, Tx

__all__ = ["HANDLERS", "Handler", "Tx"]
