"""Feature modules: pure functions of a View returning the Flows of one owner.

Each module exposes some of `datapath_flows(view)`, `network_flows(view, uuid)`,
`interface_flows(view, uuid)`, `route_link_flows(view, uuid)`; vna.desired wires them
to owner keys.  A function must return [] for an owner that no longer exists.
"""
