"""Shared core of wakame-vnet: model, configuration, ids and messaging."""
