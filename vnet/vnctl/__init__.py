"""vnctl: the command line over the webapi (never the database), in OpenVNet's style.

`vnctl <resource> add|show|del|modify ...` and `vnctl <parent> <child> add|show|del ...`
are all built from the one resource registry (vnet.registry), so a field the
API learns becomes an option here without a change in this package.
"""

from vnet.vnctl.cli import cli, main

__all__ = ["cli", "main"]
