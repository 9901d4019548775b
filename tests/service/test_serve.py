"""``tradeforge serve`` as users start it: the service on the embedded simulator."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_serve_runs_the_service_on_the_simulator_without_credentials():
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TS_", "TRADEFORGE_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "tradeforge_anyio.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tempfile.gettempdir(),
        env=env,
    )
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(6)]
        token = next(line.split()[-1] for line in banner if line.strip().startswith("token"))
        assert f"http://127.0.0.1:{port}/docs" in "".join(banner)
        assert "embedded simulator" in "".join(banner)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                status, body = get(f"{base}/health", token)
                break
            except OSError:
                assert time.monotonic() < deadline, "the service did not come up"
                time.sleep(0.1)
        assert status == 200
        assert json.loads(body)["simulator"] is True
        assert get(f"{base}/accounts")[0] == 401
        status, body = get(f"{base}/accounts", token)
        assert status == 200
        assert len(json.loads(body)["accounts"]) == 2
        assert get(f"{base}/docs")[0] == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
