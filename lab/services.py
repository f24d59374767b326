"""Run the real wakame-vnet services (vnmgr, vnet-webapi, vna) as subprocesses.

Where each service runs, and how they reach each other
------------------------------------------------------
- vnmgr and vnet-webapi run in the root network namespace.
- Each vna runs *inside its hypervisor's namespace* (`ip netns exec`). There the
  hypervisor's OVSDB socket (`unix:<rundir>/db.sock`) works as it does everywhere, and
  the bridge's controller target `tcp:127.0.0.1:<of_port>` reaches the vna, because
  ovs-vswitchd runs in that same namespace (its 127.0.0.1 is not the root one's).
  Every namespace has its own port space, so all vnas may use the same OpenFlow port.
- vnmgr's ZeroMQ sockets use `ipc://` endpoints: unix sockets in the lab directory.
  A unix socket is found through the file system, which all namespaces share, so a vna
  inside a hypervisor namespace connects to vnmgr in the root namespace although no IP
  route joins them (tcp://127.0.0.1 would not: each namespace has its own loopback).
  The endpoints are `ipc://<lab dir>/svc/zmq/rpc.sock` and `.../pub.sock`, passed to
  every service as VNET_MESSAGING_RPC_ENDPOINT / VNET_MESSAGING_PUB_ENDPOINT.
- Messaging is encrypted and role-checked (ZeroMQ CURVE, docs/messaging.md "Keys and
  roles") unless `Services(keys=False)`: the lab writes its own keys as `vnmgr keys
  init` does into `<lab dir>/svc/keys` and passes VNET_MESSAGING_KEYS_DIR to every service,
  so vnmgr runs with the webapi and agent keys every real deployment would use. Tools
  and tests reach vnmgr through `Services.rpc(role=...)`, with the role's key.
- webapi's HTTP port and vnmgr's metrics port are free ports picked at start. A vna's
  metrics port lives in its hypervisor's namespace (reach it via `ip netns exec`).

Every start returns a `ServiceHandle` (pid, log file, stop(), kill9()); a pidfile with
the process start time is kept in the lab directory, so `cleanup_stale` can stop
services of a crashed run without ever touching another process.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from lab.hosts import Hypervisor, Lab
from lab.netns import Netns
from lab.proc import wait_for, write_pidfile
from vnet.keys import WEBAPI, ClientKeys, init_keys, load_client
from vnet.messaging import RpcClient

HEALTH_PATH = "/api/1.0/health"
DEFAULT_OF_PORT = 6633


def free_tcp_port() -> int:
    """A TCP port free on 127.0.0.1 of the root namespace right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_program(name: str) -> str:
    """A console script of this venv (next to the running interpreter), else from PATH."""
    local = Path(sys.executable).parent / name  # not resolved: venv bin holds a symlink
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found next to {sys.executable} nor on PATH")
    return found


TCP_ESTABLISHED, TCP_LISTEN = "01", "0A"


def tcp_sockets(pid: int, port: int, state: str = TCP_LISTEN) -> int:
    """How many TCP sockets in `pid`'s network namespace have local `port` and `state`.
    /proc/<pid>/net/tcp shows that namespace's sockets, no `ip netns exec` needed."""
    count = 0
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, st = line.split()[1], line.split()[3]
            count += st == state and int(local.rsplit(":", 1)[1], 16) == port
    return count


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class ServiceHandle:
    """A started service process."""

    def __init__(
        self,
        name: str,
        popen: subprocess.Popen,
        log_path: Path,
        pidfile: Path,
        env: Mapping[str, str],
        netns: Netns | None,
    ):
        self.name = name
        self.popen = popen
        self.pid = popen.pid
        self.log_path = log_path
        self.pidfile = pidfile
        self.env = dict(env)  # the VNET_* settings it was given
        self.netns = netns

    def __repr__(self) -> str:
        where = f" in {self.netns.name}" if self.netns else ""
        return f"ServiceHandle({self.name!r}, pid={self.pid}{where})"

    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `check` until true; fail at once (with the log tail) if the process dies."""

        def ready() -> bool:
            if not self.alive():
                raise RuntimeError(
                    f"{self.name} exited with {self.returncode} before {what};"
                    f" log {self.log_path}:\n{self.log_text()[-3000:]}"
                )
            return check()

        try:
            wait_for(ready, timeout, interval=0.1, what=f"{self.name}: {what}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; log {self.log_path}:\n{self.log_text()[-3000:]}") from None

    def stop(self, timeout: float = 10.0, quick: bool = False) -> int | None:
        """SIGTERM (`quick`: SIGINT, which gunicorn's webapi takes as "stop now", where
        SIGTERM lets requests in flight finish: 1.4 instead of 3.5 s), then SIGKILL after
        `timeout`. Returns the exit status."""
        if self.alive():
            self.popen.send_signal(signal.SIGINT if quick else signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.pidfile.unlink(missing_ok=True)
        return self.returncode

    def kill9(self) -> None:
        """Crash it (SIGKILL), as a test of recovery would."""
        if self.alive():
            self.popen.kill()
            self.popen.wait(5)
        self.pidfile.unlink(missing_ok=True)


def start_service(
    name: str,
    argv: list[str],
    *,
    run_dir: Path,
    env: Mapping[str, str],
    netns: Netns | None = None,
) -> ServiceHandle:
    """Start `argv` (inside `netns` if given) with `env` added to this environment;
    output goes to `<run_dir>/<name>.log`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / f"{name}.log"
    full_argv = netns.argv(*argv) if netns else list(argv)
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            full_argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            # Own session: a Ctrl-C meant for the test runner must not reach the
            # services before the teardown stops them in order.
            start_new_session=True,
        )
    pidfile = run_dir / f"{name}.pid"
    write_pidfile(pidfile, popen.pid)
    return ServiceHandle(name, popen, log_path, pidfile, env, netns)


class Services:
    """Starts services of one lab with shared settings; the lab stops them on close."""

    def __init__(
        self,
        lab: Lab,
        database_url: str | None = None,
        *,
        extra_env: Mapping[str, str] | None = None,
        ready_timeout: float = 30.0,
        keys: bool = True,
    ):
        """`keys`: CURVE on (a key pair per role, written here by `vnmgr keys init`)."""
        self.lab = lab
        self.run_dir = lab.dir / "svc"
        # Without a URL the services share an SQLite file in the lab directory.
        self.database_url = database_url or f"sqlite:///{self.run_dir / 'vnet.sqlite3'}"
        zmq_dir = self.run_dir / "zmq"
        zmq_dir.mkdir(parents=True, exist_ok=True)
        self.rpc_endpoint = f"ipc://{zmq_dir}/rpc.sock"
        self.pub_endpoint = f"ipc://{zmq_dir}/pub.sock"
        self.extra_env = dict(extra_env or {})
        self.ready_timeout = ready_timeout
        self.handles: list[ServiceHandle] = []
        self.webapi_port: int | None = None
        self.keys_dir: Path | None = None
        if keys:
            self.keys_dir = self.run_dir / "keys"
            # What `vnmgr keys init` runs (tests/unit/test_keys.py runs the command), in
            # process: a subprocess cost 1.8 s of every lab. A second Services of the same
            # lab keeps the keys its running services hold.
            if not (self.keys_dir / "server.key").exists():
                init_keys(self.keys_dir)

    def client_keys(self, role: str = WEBAPI) -> ClientKeys | None:
        """`role`'s CURVE keys for a client of this lab's vnmgr; None when keys are off."""
        return load_client(self.keys_dir, role) if self.keys_dir is not None else None

    def rpc(self, timeout_ms: int = 5000, role: str = WEBAPI) -> RpcClient:
        """A client of vnmgr holding `role`'s key (webapi: may do everything). Its
        `socket(zmq.SUB)` subscribes to vnmgr's events with the same key."""
        return RpcClient(self.rpc_endpoint, timeout_ms, keys=self.client_keys(role))

    @property
    def webapi_url(self) -> str:
        if self.webapi_port is None:
            raise RuntimeError("webapi not started")
        return f"http://127.0.0.1:{self.webapi_port}"

    def common_env(self, state_name: str) -> dict[str, str]:
        state_dir = self.run_dir / state_name
        state_dir.mkdir(parents=True, exist_ok=True)
        return {
            "VNET_DATABASE_URL": self.database_url,
            "VNET_MESSAGING_RPC_ENDPOINT": self.rpc_endpoint,
            "VNET_MESSAGING_PUB_ENDPOINT": self.pub_endpoint,
            "VNET_PATHS_STATE_DIR": str(state_dir),
            **({"VNET_MESSAGING_KEYS_DIR": str(self.keys_dir)} if self.keys_dir else {}),
            **self.extra_env,
        }

    def _start(
        self, name: str, program: str, env: dict[str, str], netns: Netns | None = None
    ) -> ServiceHandle:
        handle = start_service(
            name, [find_program(program)], run_dir=self.run_dir, env=env, netns=netns
        )
        self.handles.append(handle)
        self.lab.on_close(handle.stop)
        return handle

    def start_vnmgr(self, **env: str) -> ServiceHandle:
        """Ready when its request socket exists (vnmgr binds it once it serves).
        Call again after kill9()/stop() to restart it with the same endpoints."""
        environment = {
            **self.common_env("vnmgr"),
            "VNET_VNMGR_METRICS_PORT": str(free_tcp_port()),
            **env,
        }
        rpc_path = Path(environment["VNET_MESSAGING_RPC_ENDPOINT"].removeprefix("ipc://"))
        if not any(h.name == "vnmgr" and h.alive() for h in self.handles):
            # A killed vnmgr leaves its socket file; it must not pass for readiness.
            rpc_path.unlink(missing_ok=True)
        handle = self._start("vnmgr", "vnmgr", environment)
        handle.wait_ready(rpc_path.exists, self.ready_timeout, f"{rpc_path} to appear")
        return handle

    def start_webapi(self, port: int | None = None, **env: str) -> ServiceHandle:
        """Ready on HTTP 200 from GET /api/1.0/health (answered without a token, so also
        with VNET_WEBAPI_AUTH=token). The handle is gunicorn's master: its workers are its
        children, stop() (SIGTERM) lets their requests in flight finish, and after a
        kill9() they notice the lost parent and exit by themselves."""
        self.webapi_port = port or free_tcp_port()
        environment = {
            **self.common_env("webapi"),
            "VNET_WEBAPI_HOST": "127.0.0.1",
            "VNET_WEBAPI_PORT": str(self.webapi_port),
            **env,
        }
        handle = self._start("webapi", "vnet-webapi", environment)
        url = self.webapi_url + HEALTH_PATH
        handle.wait_ready(lambda: http_ok(url), self.ready_timeout, f"200 from {url}")
        return handle

    def start_vna(
        self,
        hv: Hypervisor,
        node_id: str,
        *,
        of_port: int = DEFAULT_OF_PORT,
        transport: str = "tunnel",
        set_controller: bool = True,
        wait_connected: bool = True,
        **env: str,
    ) -> ServiceHandle:
        """vna for `hv`, inside hv's namespace. Points hv's bridge at it (unless
        set_controller=False) and waits until it listens and, optionally, until the
        bridge reports the controller connected."""
        environment = {
            **self.common_env(f"vna-{hv.name}"),
            "VNET_VNA_NODE_ID": node_id,
            "VNET_VNA_BRIDGE": hv.bridge,
            "VNET_VNA_OVSDB": hv.ovs.ovsdb_remote,
            "VNET_VNA_OF_HOST": "127.0.0.1",
            "VNET_VNA_OF_PORT": str(of_port),
            "VNET_VNA_TRANSPORT": transport,
            **env,
        }
        handle = self._start(f"vna-{hv.name}", "vna", environment, netns=hv.netns)
        handle.wait_ready(
            lambda: tcp_sockets(handle.pid, of_port) > 0,
            self.ready_timeout,
            f"OpenFlow listener on port {of_port} in {hv.netns.name}",
        )
        if set_controller:
            hv.set_controller(f"tcp:127.0.0.1:{of_port}")
        if set_controller and wait_connected:
            # The switch's connection, seen from the vna side: OVSDB's
            # Controller.is_connected would say the same only seconds later.
            handle.wait_ready(
                lambda: tcp_sockets(handle.pid, of_port, TCP_ESTABLISHED) > 0,
                self.ready_timeout,
                f"{hv.bridge} of {hv.name} to connect",
            )
        return handle

    def stop_all(self) -> None:
        """Stop every service started here, the last started first."""
        for handle in reversed(self.handles):
            # A test's end: nothing is in flight that must finish (test_gunicorn proves
            # the graceful stop).
            handle.stop(quick=handle.name == "webapi")
