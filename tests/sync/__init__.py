"""Helpers for the blocking runtime's tests: the simulator and tiny servers on owned threads."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import anyio.to_thread

from tradeforge_proto.http import HttpServerConnection
from tradeforge_sim.server import SimServer

Handler = Callable[[socket.socket, threading.Event], None]


@contextlib.contextmanager
def running_sim(**options: Any) -> Iterator[SimServer]:
    """``SimServer(**options)`` served by a thread with its own event loop until the block ends."""
    handoff: queue.Queue[SimServer | BaseException] = queue.Queue()
    stop = threading.Event()

    async def serve() -> None:
        try:
            async with SimServer(**options) as sim:
                handoff.put(sim)
                await anyio.to_thread.run_sync(stop.wait)
        except BaseException as exc:
            handoff.put(exc)
            raise

    def main() -> None:
        with contextlib.suppress(BaseException):  # already handed to the test thread
            anyio.run(serve)

    thread = threading.Thread(target=main, name="simulator", daemon=True)
    thread.start()
    try:
        started = handoff.get(timeout=10)
        if isinstance(started, BaseException):
            raise started
        yield started
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "the simulator thread did not stop"


@contextlib.contextmanager
def scripted_server(handler: Handler) -> Iterator[int]:
    """A TCP server on 127.0.0.1 running ``handler(conn, stop)`` per connection; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    port = int(listener.getsockname()[1])
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def serve(conn: socket.socket) -> None:
        with conn:
            handler(conn, stop)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            worker = threading.Thread(target=serve, args=(conn,), daemon=True)
            workers.append(worker)
            worker.start()

    acceptor = threading.Thread(target=accept, name="scripted-server", daemon=True)
    acceptor.start()
    try:
        yield port
    finally:
        stop.set()
        acceptor.join(5)
        for worker in workers:
            worker.join(5)
        listener.close()


def read_request(conn: socket.socket, http: HttpServerConnection) -> bool:
    """Read until one whole request arrived (True) or the client closed (False)."""
    while True:
        try:
            data = conn.recv(65_536)
        except OSError:
            data = b""
        if http.receive_data(data) is not None:
            return True
        if not data:
            return False
