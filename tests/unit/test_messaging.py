"""vnet.messaging.RpcClient against an in-process ROUTER: one kept REQ socket per
thread, a fresh one after a call that got no answer."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import zmq

from vnet.errors import ApiError
from vnet.messaging import RpcClient, decode, encode


class Router:
    """Answers each request with the routing id of the socket that sent it, except
    requests whose op is "ignore" (never answered)."""

    def __init__(self, context: zmq.Context) -> None:
        self.socket = context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stop.is_set():
            if not self.socket.poll(50):
                continue
            peer, empty, body = self.socket.recv_multipart()
            if decode(body)["op"] == "ignore":
                continue
            reply = {"ok": True, "result": peer.hex()}
            self.socket.send_multipart([peer, empty, encode(reply)])

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.socket.close()


@pytest.fixture
def router() -> Iterator[Router]:
    context = zmq.Context()
    server = Router(context)
    yield server
    server.close()
    context.term()


def test_calls_from_one_thread_share_one_socket(router: Router) -> None:
    client = RpcClient(router.endpoint, 2000)
    assert client.call("health") == client.call("health") == client.call("health")
    client.close()


def test_a_call_without_answer_gives_503_and_the_next_uses_a_fresh_socket(
        router: Router) -> None:
    client = RpcClient(router.endpoint, 2000)
    first = client.call("health")
    with pytest.raises(ApiError) as refused:
        client.call("ignore", timeout_ms=100)
    assert refused.value.status == 503
    # A REQ socket that missed its reply can send nothing more: the next call works only
    # because it has a new socket (a new routing id at the router).
    second = client.call("health")
    assert second != first
    client.close()


def test_each_thread_has_its_own_socket(router: Router) -> None:
    client = RpcClient(router.endpoint, 2000)
    peers: list[str] = []

    def call() -> None:
        peers.extend(client.call("health") for _ in range(3))
        client.close()  # this thread's socket

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(peers) == 12 and len(set(peers)) == 4
