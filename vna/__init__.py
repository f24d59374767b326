"""vna: the agent beside each Open vSwitch bridge.

The pure core (model -> desired flows) lives in flows, pipeline, view, modelstore,
features/*, desired and dirty; ofwire turns flows into OpenFlow 1.3 wire bytes (what
the syncer sends), ofmsg into os-ken messages (meters, and the reference ofwire is
tested against).
"""
