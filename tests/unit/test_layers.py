"""Layers point one way: the import contracts in setup.cfg hold, and vnctl stays light.

`make test` also runs lint-imports before pytest; running it here as well means a plain
`pytest tests/unit` cannot pass with a broken layer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_vnctl_loads_no_server_code_at_run_time() -> None:
    """What the contracts say statically, checked on a real interpreter: building every
    vnctl command imports no SQLAlchemy, no service and no lab."""
    code = ("import sys, vnctl.cli; print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'sqlalchemy', 'flask', 'zmq', 'vnmgr', 'webapi', 'vna', 'lab'}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_vna_loads_no_database_code_at_run_time() -> None:
    """The vna runs on every hypervisor: its whole import graph (agent, switch, link,
    every feature) loads no SQLAlchemy, Alembic or database driver."""
    code = ("import sys, vna.cli, vna.agent, vna.switch, vna.vnmgr_link, vna.features; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'sqlalchemy', 'alembic', 'pymysql', 'vnmgr', 'webapi', 'lab'}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_vna_loads_no_green_dns() -> None:
    """vna.cli.lean_imports, then what vna.cli.main imports: eventlet (imported by
    python-ovs) brings no green DNS resolver, i.e. no second copy of dnspython (14.5 MiB
    of RSS).  The plain dnspython the DNS features use is still there."""
    code = ("import sys, vna.cli; vna.cli.lean_imports(); "
            "import vna.agent, vna.switch, vna.ovsdb, vna.vnmgr_link, vna.features; "
            "from os_ken.base.app_manager import AppManager; "
            "print(sorted(m for m in sys.modules if m == 'eventlet.support.greendns' "
            "or m.startswith('__patched_module_dns')), 'eventlet' in sys.modules, "
            "'dns.message' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "EVENTLET_NO_GREENDNS"}
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=REPO, env=env,
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[] True True"
