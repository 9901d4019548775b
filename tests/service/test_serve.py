"""``tradeforge serve`` as users start it: the service on the embedded simulator."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import IO

SAFETY = 30.0
"""Seconds a service process may take to start or to stop before a test gives up on it."""
ACCEPT_ERROR = "socket.accept() out of system resource"


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


def wait_until_up(base: str, token: str) -> tuple[int, bytes]:
    """GET /ready once the service listens."""
    deadline = time.monotonic() + SAFETY
    while True:
        try:
            return get(f"{base}/ready", token)
        except OSError:
            assert time.monotonic() < deadline, "the service did not come up"
            time.sleep(0.1)


class Service:
    """A ``tradeforge serve`` process: its banner, base URL and stderr file."""

    def __init__(self, process: subprocess.Popen[str], port: int, stderr: IO[bytes]) -> None:
        self.process = process
        self.base = f"http://127.0.0.1:{port}"
        self.stderr = stderr
        assert process.stdout is not None
        self.banner: list[str] = []
        while not self.banner or not self.banner[-1].startswith("Ctrl-C"):
            line = process.stdout.readline()
            assert line, f"serve ended: {self.errors()}"
            self.banner.append(line.rstrip("\n"))

    def field(self, name: str) -> str:
        """A banner line's text after its name."""
        return next(line.split(None, 1)[1] for line in self.banner if line.split()[:1] == [name])

    def errors(self) -> str:
        self.stderr.flush()
        return Path(self.stderr.name).read_text(errors="replace")


@contextmanager
def serving(
    *options: str, env: dict[str, str] | None = None, descriptors: int | None = None
) -> Iterator[Service]:
    """``tradeforge serve`` on a free port with ``options``, stopped when the block ends;
    ``descriptors`` lowers the number of files the process may open."""
    port = free_port()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("TS_", "TRADEFORGE_"))}
    with ExitStack() as stack:
        stderr = stack.enter_context(tempfile.NamedTemporaryFile(prefix="serve-", suffix=".err"))
        # Each service keeps its paper-exchange state in a data directory of its own.
        data = stack.enter_context(tempfile.TemporaryDirectory(prefix="serve-data-"))
        base_env["XDG_DATA_HOME"] = data
        process = subprocess.Popen(
            [sys.executable, "-m", "tradeforge_anyio.cli", "serve", "--port", str(port), *options],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=tempfile.gettempdir(),
            env={**base_env, **(env or {})},
        )
        if descriptors is not None:
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.prlimit(process.pid, resource.RLIMIT_NOFILE, (descriptors, hard))
        try:
            yield Service(process, port, stderr)
        finally:
            stop(process)


def stop(process: subprocess.Popen[str]) -> None:
    """End the process: SIGTERM, then SIGKILL if it is still there after the safety timeout."""
    process.terminate()
    try:
        process.wait(timeout=SAFETY)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    finally:
        assert process.stdout is not None
        process.stdout.close()


def test_serve_runs_the_service_on_the_simulator_without_credentials():
    with serving() as service:
        token = service.field("token").split()[-1]  # a token made for this run is shown once
        assert service.field("token").startswith("new for this run")
        banner = "\n".join(service.banner)
        assert f"{service.base}/docs" in banner
        assert "embedded simulator" in banner
        status, body = wait_until_up(service.base, token)
        assert status == 200
        assert json.loads(body)["simulator"] is True
        assert get(f"{service.base}/accounts")[0] == 401
        status, body = get(f"{service.base}/accounts", token)
        assert status == 200
        assert len(json.loads(body)["accounts"]) == 2
        assert get(f"{service.base}/docs")[0] == 200


def start_upload(base: str, token: str) -> socket.socket:
    """A request whose body arrives slowly: its head and a few bytes of a 1000-byte body."""
    upload = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=SAFETY)
    head = (
        "POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: 1000\r\n\r\n"
    )
    upload.sendall(head.encode() + b'{"account_id": ')
    return upload


def test_sigterm_stops_the_service_within_its_grace_with_a_request_in_flight():
    secret = "env-s3rvice-token"
    with serving(env={"TRADEFORGE_SERVICE_TOKEN": secret}) as service:
        assert service.field("token") == "from TRADEFORGE_SERVICE_TOKEN"
        assert secret not in "\n".join(service.banner)
        assert wait_until_up(service.base, secret)[0] == 200
        with start_upload(service.base, secret):
            assert get(f"{service.base}/health", secret)[0] == 200  # others are served meanwhile
            service.process.send_signal(signal.SIGTERM)
            service.process.wait(timeout=SAFETY)  # the grace, then the request is cancelled


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SAFETY
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def closed_by_peer(connections: Sequence[socket.socket]) -> None:
    """Wait until the service has closed every connection."""
    for connection in connections:
        connection.settimeout(SAFETY)
        with suppress(ConnectionResetError):
            assert connection.recv(1) == b""


def test_exhausted_descriptors_neither_flood_the_log_nor_stop_the_service():
    token = "flag-s3rvice-token"
    options = ("--token", token, "--header-timeout", "2")
    # 64 descriptors: the idle connections exhaust them.
    with serving(*options, descriptors=64) as service, ExitStack() as stack:
        assert service.field("token") == "from --token"
        assert token not in "\n".join(service.banner)
        assert wait_until_up(service.base, token)[0] == 200
        port = int(service.base.rsplit(":", 1)[1])
        idle = [
            stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=SAFETY))
            for _ in range(120)
        ]
        wait_for(lambda: ACCEPT_ERROR in service.errors(), "the descriptors were not exhausted")
        closed_by_peer(idle)  # each within the header timeout of being accepted
        assert wait_until_up(service.base, token)[0] == 200
        errors = service.errors()
    assert errors.count(ACCEPT_ERROR) <= 3, errors[:2000]
    assert len(errors) < 20_000


def post_json(url: str, token: str, body: dict[str, object]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=SAFETY) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_embedded_simulator_keeps_its_state_in_the_user_data_directory(
    tmp_path: Path,
) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path)}
    state = tmp_path / "tradeforge" / "paper-exchange.db"
    with serving("--token", "t", "--account", "50K", env=env) as service:
        assert f"state        {state}" in "\n".join(service.banner)
        wait_until_up(service.base, "t")
        accounts = json.loads(get(f"{service.base}/accounts", "t")[1])["accounts"]
        assert [a["name"] for a in accounts] == ["50KTC-V2-SIM-1"]
        contract = json.loads(get(f"{service.base}/contracts/by-symbol/MES", "t")[1])["id"]
        order = {
            "account_id": 20258288,
            "contract_id": contract,
            "side": "BUY",
            "type": "LIMIT",
            "size": 1,
            "limit_price": "1000",
        }
        status, body = post_json(f"{service.base}/orders", "t", order)
        assert status == 201, body
        placed = json.loads(body)["order_id"]
    assert state.exists()
    with serving("--token", "t", env=env) as service:  # no --account: the kept accounts
        wait_until_up(service.base, "t")
        status, body = get(f"{service.base}/orders/open?account_id=20258288", "t")
        assert status == 200, body
        assert [o["id"] for o in json.loads(body)["orders"]] == [placed]
    with serving("--token", "t", "--fresh", "--account", "100K", env=env) as service:
        wait_until_up(service.base, "t")
        accounts = json.loads(get(f"{service.base}/accounts", "t")[1])["accounts"]
        assert [a["name"] for a in accounts] == ["100KTC-V2-SIM-1"]


def test_serve_refuses_to_start_when_the_backend_refuses_the_credentials():
    from anyio.from_thread import start_blocking_portal

    from tradeforge_sim.server import SimServer

    with start_blocking_portal() as portal, portal.wrap_async_context_manager(SimServer()) as sim:
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("TS_", "TRADEFORGE_"))}
        env = {"TS_USERNAME": "trader", "TS_API_KEY": "not-the-key", "TS_API_URL": sim.api_url}
        done = subprocess.run(
            [sys.executable, "-m", "tradeforge_anyio.cli", "serve", "--port", str(free_port())],
            capture_output=True,
            text=True,
            timeout=SAFETY,
            cwd=tempfile.gettempdir(),
            env={**base_env, **env},
            check=False,
        )
    assert done.returncode == 1
    assert "refused the login" in done.stderr
    assert "not-the-key" not in done.stderr + done.stdout
    assert "TradeForge service" not in done.stdout  # no banner: nothing was served


def test_serve_logs_each_change_as_json_and_journals_it(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path)}
    journal = tmp_path / "tradeforge" / "journal.sqlite3"
    with serving("--token", "t", "--log-format", "json", env=env) as service:
        assert f"journal    {journal}" in "\n".join(service.banner)
        wait_until_up(service.base, "t")
        contract = json.loads(get(f"{service.base}/contracts/by-symbol/MES", "t")[1])["id"]
        order = {"account_id": 20258288, "contract_id": contract, "side": "BUY", "type": "MARKET"}
        status, body = post_json(f"{service.base}/orders", "t", order)
        assert status == 201, body
        placed = json.loads(body)["order_id"]
        deadline = time.monotonic() + SAFETY
        while '"tradeforge.audit"' not in service.errors():
            assert time.monotonic() < deadline, service.errors()
            time.sleep(0.05)
        lines = [json.loads(line) for line in service.errors().splitlines() if "audit" in line]
    (line,) = [x for x in lines if x["logger"] == "tradeforge.audit"]
    assert line["audit"]["order_id"] == placed
    assert line["audit"]["outcome"] == "ok"
    assert line["level"] == "info"
    shown = subprocess.run(
        [sys.executable, "-m", "tradeforge_anyio.cli", "journal", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    ).stdout
    assert json.loads(shown)["order_id"] == placed  # the default journal, read back
    assert journal.exists()


def test_serve_starts_and_warns_when_the_backend_does_not_answer_the_login() -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {"TS_USERNAME": "trader", "TS_API_KEY": "the-key", "TS_API_URL": nobody}
    with serving("--token", "t", "--log-format", "json", env=env) as service:
        status, body = wait_until_up(service.base, "t")
        assert status == 503
        assert json.loads(body)["login"] == "unreachable"
        log = service.errors()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    (warning,) = [x for x in lines if x["logger"] == "tradeforge.serve"]
    assert warning["level"] == "warning"
    assert "did not answer the login" in warning["message"]
    assert "the-key" not in log


def test_serve_judges_a_topstepx_account_by_the_rules_it_is_told() -> None:
    from anyio.from_thread import start_blocking_portal

    from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
    from tradeforge_sim.server import SimServer

    # A gateway reached over the network, as TopStepX is: the service knows no rules unless told.
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(SimServer()) as sim:
        env = {"TS_USERNAME": DEFAULT_USERNAME, "TS_API_KEY": DEFAULT_API_KEY}
        env["TS_API_URL"] = sim.api_url
        ruled = "--rules", "20258289=combine-50k:50500"
        with serving("--token", "t", *ruled, env=env) as service:
            assert wait_until_up(service.base, "t")[0] == 200
            status, body = get(f"{service.base}/risk?account_id=20258289", "t")
            assert status == 200, body
            risk = json.loads(body)
            assert risk["rules"] == "50K Combine"
            # The 50K account's floor trails the given high, not its starting balance.
            assert risk["floor"] == "48500"
            status, body = get(f"{service.base}/risk?account_id=20258288", "t")
            assert json.loads(body)["rules"] is None


def test_serve_refuses_rules_it_cannot_use() -> None:
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("TS_", "TRADEFORGE_"))}
    for rules, code, said in (
        ("20258288=combine-50k", 1, "carry their own rules"),  # the embedded simulator
        ("20258288=combine-75k", 2, "expected ACCOUNT=TYPE"),
        ("20258288=combine-50k:-5", 2, "HIGH"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "tradeforge_anyio.cli", "serve", "--rules", rules],
            capture_output=True,
            text=True,
            timeout=SAFETY,
            cwd=tempfile.gettempdir(),
            env=base_env,
            check=False,
        )
        assert done.returncode == code, done.stderr
        assert said in done.stderr
