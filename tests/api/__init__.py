"""API tests against real vnmgr and vnet-webapi processes (a package: helpers import relatively)."""
