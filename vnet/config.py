"""Configuration: INI files overlaid by VNET_<SECTION>_<KEY> environment variables.

Lookup order for the directory: an explicit --config-dir, $VNET_CONF_DIR,
/etc/wakame-vnet, then the repository's etc/wakame-vnet (so a checkout runs as is).
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILES = ("common.conf", "vnmgr.conf", "webapi.conf", "vna.conf")
REPO_CONF_DIR = Path(__file__).resolve().parent.parent / "etc" / "wakame-vnet"


def find_config_dir(explicit: str | None = None) -> Path:
    for candidate in (explicit, os.environ.get("VNET_CONF_DIR"), "/etc/wakame-vnet"):
        if candidate and Path(candidate, "common.conf").is_file():
            return Path(candidate)
    return REPO_CONF_DIR


@dataclass
class Config:
    parser: configparser.ConfigParser
    directory: Path

    def get(self, section: str, key: str, default: str | None = None) -> str:
        env = os.environ.get(f"VNET_{section}_{key}".upper())
        if env is not None:
            return env
        value = self.parser.get(section, key, fallback=None)
        if value is None:
            if default is None:
                raise KeyError(f"missing configuration [{section}] {key}")
            return default
        return value

    def get_int(self, section: str, key: str, default: int | None = None) -> int:
        return int(self.get(section, key, None if default is None else str(default)))

    def get_float(self, section: str, key: str, default: float | None = None) -> float:
        return float(self.get(section, key, None if default is None else str(default)))

    def state_dir(self) -> Path:
        preferred = Path(self.get("paths", "state_dir", "/var/lib/wakame-vnet"))
        for path in (preferred, Path.home() / ".local" / "state" / "wakame-vnet"):
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError:
                continue
            if os.access(path, os.W_OK):
                return path
        raise RuntimeError(f"no writable state directory (tried {preferred})")

    def database_url(self) -> str:
        url = self.get("database", "url", "")
        return url or f"sqlite:///{self.state_dir() / 'vnet.sqlite3'}"


def load_config(config_dir: str | None = None) -> Config:
    directory = find_config_dir(config_dir)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read([directory / name for name in CONFIG_FILES])
    return Config(parser, directory)
