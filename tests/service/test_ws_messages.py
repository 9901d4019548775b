"""What a ``/ws/stream`` client may send: any text is a request or a clear BadMessage."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge_anyio.service.ws import BadMessage, parse_request
from tradeforge_proto.core.subscriptions import Channel, Subscription

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
MARKET_TYPES = st.sampled_from(["QUOTE", "DEPTH", "TRADE", "BOOK", "quote"])
USER_TYPES = st.sampled_from(
    ["ORDER_UPDATE", "POSITION_UPDATE", "ACCOUNT_UPDATE", "USER_TRADE", "FILLS"]
)
# Requests shaped like real ones, with every part possibly of the wrong kind.
SHAPED = st.fixed_dictionaries(
    {"action": st.sampled_from(["subscribe", "unsubscribe", "watch"]) | JSON},
    optional={
        "market_data": st.fixed_dictionaries(
            {},
            optional={
                "provider_contract_ids": st.lists(st.text(max_size=20) | JSON, max_size=3) | JSON,
                "data_types": st.lists(MARKET_TYPES | JSON, max_size=4) | JSON,
            },
        )
        | JSON,
        "user_data": st.fixed_dictionaries(
            {},
            optional={
                "provider_account_ids": st.lists(
                    st.integers() | st.from_regex(r"\A ?[0-9_]{0,22} ?\Z") | JSON, max_size=3
                )
                | JSON,
                "data_types": st.lists(USER_TYPES | JSON, max_size=4) | JSON,
            },
        )
        | JSON,
    },
)


def parsed_or_refused(text: object) -> None:
    try:
        request = parse_request(text)
    except BadMessage as exc:
        refusal = str(exc)
    else:
        assert request.action in ("subscribe", "unsubscribe")
        for sub in request.subscriptions:
            key = sub.key
            assert (0 < len(key) <= 100) if isinstance(key, str) else (key or 0) > 0
        assert all(a > 0 for a in request.accounts)
        return
    assert 0 < len(refusal) < 200


@settings(max_examples=400)
@given(message=SHAPED | JSON)
def test_any_json_message_is_parsed_or_refused_clearly(message: Any) -> None:
    parsed_or_refused(json.dumps(message))


@settings(max_examples=200)
@given(text=st.text(max_size=60) | st.binary(max_size=20))
def test_any_text_is_parsed_or_refused_clearly(text: str | bytes) -> None:
    parsed_or_refused(text)


def test_a_valid_request_asks_for_each_pair():
    request = parse_request(
        json.dumps(
            {
                "action": "subscribe",
                "market_data": {"provider_contract_ids": ["C1"], "data_types": ["QUOTE", "TRADE"]},
                "user_data": {
                    "provider_account_ids": [" 12 ", 34],
                    "data_types": ["ORDER_UPDATE", "ACCOUNT_UPDATE"],
                },
            }
        )
    )
    assert request.subscriptions == {
        Subscription(Channel.QUOTES, "C1"),
        Subscription(Channel.TRADES, "C1"),
        Subscription(Channel.ORDERS, 12),
        Subscription(Channel.ORDERS, 34),
    }
    assert request.accounts == {12, 34}


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("[" * 5000, "the message is not JSON (or nests too deeply)"),
        ({"action": "x" * 500}, "unknown action 'xxxx"),
        (
            {"action": "subscribe", "user_data": {"provider_account_ids": ["1_0"]}},
            "invalid account id '1_0'",
        ),
        (
            {"action": "subscribe", "user_data": {"provider_account_ids": [-5]}},
            "invalid account id -5",
        ),
        (
            {"action": "subscribe", "user_data": {"provider_account_ids": ["9" * 5000]}},
            "invalid account id '9999",
        ),
        (
            {"action": "subscribe", "market_data": {"provider_contract_ids": ["C" * 101]}},
            "invalid contract id 'CCCC",
        ),
        (
            {"action": "subscribe", "market_data": {"provider_contract_ids": ["C1\n"]}},
            "invalid contract id 'C1\\n'",
        ),
    ],
)
def test_bad_parts_are_named_briefly(message: object, error: str):
    text = message if isinstance(message, str) else json.dumps(message)
    with pytest.raises(BadMessage) as caught:
        parse_request(text)
    refusal = str(caught.value)
    assert refusal.startswith(error)
    assert len(refusal) < 100  # a long value is cut short, not echoed whole
