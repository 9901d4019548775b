"""Every fuzz target also runs under hypothesis in the suite, on a bounded budget."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import fuzz_hubs, fuzz_rest, fuzz_signalr, fuzz_websocket

BOUNDED = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def seeded(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, and seeds with arbitrary bytes spliced in."""
    spliced = st.tuples(st.sampled_from(seeds), st.integers(0, 400), st.binary(max_size=24)).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + len(t[2]) :]
    )
    return st.one_of(st.binary(max_size=512), spliced)


@BOUNDED
@given(prefix=st.binary(min_size=1, max_size=1), body=seeded(fuzz_hubs.SEEDS))
def test_hub_decoders_only_raise_library_errors(prefix, body):
    fuzz_hubs.one_input(prefix + body)


@BOUNDED
@given(prefix=st.binary(min_size=1, max_size=1), body=seeded(fuzz_signalr.SEEDS))
def test_signalr_only_raises_library_errors(prefix, body):
    fuzz_signalr.one_input(prefix + body)


@BOUNDED
@given(prefix=st.binary(min_size=1, max_size=1), body=seeded(fuzz_websocket.SEEDS))
def test_websocket_only_raises_library_errors(prefix, body):
    fuzz_websocket.one_input(prefix + body)


@BOUNDED
@given(head=st.binary(min_size=3, max_size=3), body=seeded(fuzz_rest.SEEDS))
def test_rest_parsers_only_raise_library_errors(head, body):
    fuzz_rest.one_input(head + body)


def test_hub_harness_reaches_the_decoders():
    assert fuzz_hubs.run(2000, seed=3) == 2000
