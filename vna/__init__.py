"""vna: the agent beside each Open vSwitch bridge.

The pure core (model -> desired flows) lives in flows, pipeline, view, modelstore,
features/*, desired and dirty; ofmsg turns flows into os-ken messages.
"""
