"""Each test runs on asyncio, on trio and on the blocking runtime (driven from worker threads)."""

from __future__ import annotations

import pytest

RUNTIMES = ("asyncio", "trio", "blocking")


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def anyio_backend(runtime: str) -> str:
    return "trio" if runtime == "trio" else "asyncio"
