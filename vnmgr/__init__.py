"""vnmgr: the single writer of the network model and publisher of its changes."""
