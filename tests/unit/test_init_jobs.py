"""The upstart jobs and systemd units start programs that the package really installs,
in the documented order, and systemd itself accepts the units."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from lab.services import find_program

ROOT = Path(__file__).resolve().parents[2]
UPSTART = sorted((ROOT / "etc" / "init").glob("*.conf"))
SYSTEMD = sorted((ROOT / "etc" / "systemd").glob("*.service"))
SERVICES = {"vnet-vnmgr": "vnmgr", "vnet-webapi": "vnet-webapi", "vnet-vna": "vna"}
CONFIG_ARGS = ["--config-dir", "/etc/wakame-vnet"]


def console_scripts() -> set[str]:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    lines = setup["options.entry_points"]["console_scripts"].strip().splitlines()
    return {line.split("=")[0].strip() for line in lines}


def command_lines(path: Path) -> list[list[str]]:
    """The argv of every `exec` (upstart) or `ExecStart=` (systemd) line."""
    found = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("exec "):
            found.append(line.removeprefix("exec ").split())
        elif line.startswith("ExecStart="):
            found.append(line.removeprefix("ExecStart=").split())
    return found


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are CamelCase
    parser.read(path)
    return parser


def test_every_service_has_both_init_files() -> None:
    assert {p.stem for p in UPSTART} == set(SERVICES)
    assert {p.stem for p in SYSTEMD} == set(SERVICES)


@pytest.mark.parametrize("path", UPSTART + SYSTEMD, ids=lambda p: p.name)
def test_commands_are_declared_console_scripts(path: Path) -> None:
    scripts = console_scripts()
    commands = command_lines(path)
    assert len(commands) == 1, commands
    program, *args = commands[0]
    assert Path(program).parent == Path("/usr/bin")
    assert Path(program).name in scripts, f"{program} is not a console script of setup.cfg"
    assert Path(program).name == SERVICES[path.stem]
    assert args == CONFIG_ARGS


@pytest.mark.parametrize("path", UPSTART, ids=lambda p: p.name)
def test_upstart_job(path: Path) -> None:
    lines = [line.strip() for line in path.read_text().splitlines()]
    assert "respawn" in lines
    assert any(line.startswith("start on ") for line in lines)
    assert any(line.startswith("stop on ") for line in lines)
    start_on = next(line for line in lines if line.startswith("start on "))
    if path.stem != "vnet-vnmgr":
        assert "started vnet-vnmgr" in start_on
    if path.stem == "vnet-vna":
        assert "started openvswitch-switch" in start_on


@pytest.mark.parametrize("path", SYSTEMD, ids=lambda p: p.name)
def test_systemd_unit(path: Path) -> None:
    parsed = unit(path)
    service = parsed["Service"]
    assert (service["Type"], service["Restart"], service["KillSignal"]) == \
        ("simple", "on-failure", "SIGTERM")
    after = parsed["Unit"].get("After", "").split()
    wants = parsed["Unit"].get("Wants", "").split()
    needs = {"vnet-vnmgr": [], "vnet-webapi": ["vnet-vnmgr.service"],
             "vnet-vna": ["vnet-vnmgr.service", "openvswitch-switch.service"]}[path.stem]
    for dependency in needs:
        assert dependency in after and dependency in wants, dependency
    assert parsed["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify insists that ExecStart's binary exists: point it at this venv's scripts.
    copies = []
    for path in SYSTEMD:
        try:
            program = find_program(SERVICES[path.stem])
        except FileNotFoundError:
            continue
        text = path.read_text().replace(f"/usr/bin/{SERVICES[path.stem]} ", f"{program} ")
        assert program in text
        copy = tmp_path / path.name
        copy.write_text(text)
        copies.append(str(copy))
    if not copies:
        pytest.skip("none of the console scripts is installed")
    result = subprocess.run([analyze, "verify", "--man=no", *copies], capture_output=True,
                            text=True, timeout=60, check=False)
    # Complaints about the host's own units are not ours; any about these files are.
    ours = [line for line in (result.stdout + result.stderr).splitlines()
            if any(Path(c).name in line or str(tmp_path) in line for c in copies)]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr
