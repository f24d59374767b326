"""The enumerated values vnmgr accepts for interface and network modes.

Kept in this one module so that moving them to the shared resource registry is a change
of one import line here, not in every handler.
"""

INTERFACE_MODES = ("vif", "simulated", "host", "patch", "remote")
NETWORK_MODES = ("virtual", "physical")
