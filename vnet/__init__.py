"""Shared core of wakame-vnet: model, migrations, the resource registry, configuration,
ids, messaging, errors and serialisation. It imports no service, lab, CLI, bench or tests."""
