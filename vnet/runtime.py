"""What every service process shares: logging format, pid file, SIGTERM handling."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from vnet.config import Config, load_config


class OneLineFormatter(logging.Formatter):
    """`ts level service logger message` on one line, so logs grep and parse easily."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        message = record.getMessage().replace("\n", " | ")
        if record.exc_info:
            message += " | " + self.formatException(record.exc_info).replace("\n", " | ")
        return (f"{ts}.{int(record.msecs):03d}Z level={record.levelname} service={self.service} "
                f"logger={record.name} msg={message}")


def setup_logging(service: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-dir", help="directory holding common.conf and friends")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument("--pid-file", help="write the process id here")


def start_service(service: str, args: argparse.Namespace) -> Config:
    config = load_config(args.config_dir)
    setup_logging(service, args.log_level or config.get("logging", "level", "INFO"))
    pid_file = args.pid_file or config.get(service, "pid_file", "")
    if pid_file:
        Path(pid_file).parent.mkdir(parents=True, exist_ok=True)
        Path(pid_file).write_text(f"{os.getpid()}\n")
    return config


def service_config(prog: str, service: str, description: str,
                   argv: list[str] | None) -> Config:
    """Parse a plain service's command line (common options only) and set it up."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    common_arguments(parser)
    return start_service(service, parser.parse_args(argv))


def on_sigterm(stop: Callable[[], None]) -> None:
    def handler(_signum: int, _frame: object) -> None:
        stop()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
