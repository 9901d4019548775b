"""The simulator as users start it, and as a third-party SignalR client sees it."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import anyio
import anyio.abc
import pytest

from tradeforge_proto.providers import topstepx
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.server import SimServer

from .netclient import Rest


def test_python_m_sim_prints_its_urls_and_serves_them():
    process = subprocess.Popen(
        [sys.executable, "-m", "tradeforge_sim", "--port", "0", "--seed", "3", "--rate", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(9)]
        banner = "".join(lines)
        assert "username     trader" in banner
        assert f"API key      {DEFAULT_API_KEY}" in banner
        api_url = next(line.split()[-1] for line in lines if "REST API" in line)
        assert api_url.startswith("http://127.0.0.1:")

        async def check() -> None:
            rest = Rest(api_url)
            await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
            accounts = await rest.run(topstepx.search_accounts())
            assert len(accounts) == 2
            await rest.aclose()

        anyio.run(check)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_sim_command_applies_its_time_limits_and_refuses_nonsense():
    refused = subprocess.run(
        [sys.executable, "-m", "tradeforge_anyio.cli", "sim", "--body-timeout", "0"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert "--body-timeout must be positive" in refused.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "tradeforge_anyio.cli", "sim", "--port", "0", "--header-timeout",
         "0.3", "--max-body", "100"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        api_url = next(line.split()[-1] for line in process.stdout if "REST API" in line)
        host, port = api_url.removeprefix("http://").split("/")[0].split(":")

        async def check() -> None:
            with anyio.fail_after(30):  # a safety net: the limit closes the connection
                async with await anyio.connect_tcp(host, int(port)) as slow:
                    await slow.send(b"POST /api/Account/search HTTP/1.1\r\nHost: x\r\n")
                    answer = b""
                    while chunk := await _receive_or_eof(slow):
                        answer += chunk
                    assert answer.startswith(b"HTTP/1.1 408")
                async with await anyio.connect_tcp(host, int(port)) as big:
                    await big.send(
                        b"POST /api/Auth/loginKey HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                    )
                    assert (await big.receive()).startswith(b"HTTP/1.1 413")

        anyio.run(check)
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _receive_or_eof(stream: anyio.abc.ByteStream) -> bytes:
    try:
        return await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return b""


def test_a_third_party_signalr_client_connects_subscribes_and_receives():
    pysignalr = pytest.importorskip("pysignalr.client")

    async def scenario() -> list[object]:
        async with SimServer() as sim:
            rest = Rest(sim.api_url)
            token = await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
            contract = next(
                c.id for c in await rest.run(topstepx.available_contracts()) if "MES" in c.id
            )
            await rest.aclose()
            received: list[object] = []
            client = pysignalr.SignalRClient(f"{sim.market_hub_url}?access_token={token}")

            async def on_quote(arguments: list[object]) -> None:
                received.append(arguments)

            async def on_open() -> None:
                await client.send("SubscribeContractQuotes", [contract])

            client.on("GatewayQuote", on_quote)
            client.on_open(on_open)
            task = asyncio.create_task(client.run())
            try:
                for _ in range(100):
                    await asyncio.sleep(0.05)
                    if len(received) >= 2:
                        break
            finally:
                task.cancel()
            return received

    received = asyncio.run(scenario())
    assert len(received) >= 2
    first = received[0]
    assert isinstance(first, list)
    assert first[0].startswith("CON.F.US.MES.")
    assert {"bestBid", "bestAsk", "symbol"} <= set(first[1])
