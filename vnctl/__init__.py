"""vnctl: the command line over the webapi (never the database), in OpenVNet's style.

`vnctl <resource> add|show|del|modify ...` and `vnctl <parent> <child> add|show|del ...`
are all built from the one resource registry (vnet.registry), so a field the API learns
becomes an option here without a change in this package.

A client only: it talks HTTP (vnctl.api) and imports no SQLAlchemy, no service and no
lab code, so a command starts fast (the import contracts in setup.cfg keep it so). The
entry point is vnctl.cli:main; this file imports nothing, so the lab can use vnctl.api
without building the command tree.
"""
