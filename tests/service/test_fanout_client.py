"""A fan-out client: message texts made once per event, and a warning when it falls behind."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tradeforge_anyio.service.fanout import SLOW_CONSUMER, FanoutClient, MessageTexts
from tradeforge_proto.core.enums import TradeSide
from tradeforge_proto.core.events import MarketTradeReceived, QuoteUpdated
from tradeforge_proto.core.models import MarketTrade, Quote

STAMP = datetime(2026, 11, 24, 14, 30, 0, 250000, tzinfo=UTC)


def quote(bid: str) -> QuoteUpdated:
    return QuoteUpdated(Quote("CON.F.US.MES.Z26", best_bid=Decimal(bid), timestamp=STAMP))


def test_text_is_the_seed_message_with_exact_prices():
    message = json.loads(MessageTexts().text(quote("6012.25")))
    assert message["event_type"] == "QUOTE"
    assert message["data"]["best_bid"] == "6012.25"
    assert message["data"]["timestamp"] == "2026-11-24T14:30:00.250000Z"  # as REST writes it
    assert message["data"]["best_ask"] is None


def test_one_event_is_encoded_once_for_every_client():
    texts = MessageTexts()
    event = quote("1.25")
    assert texts.text(event) is texts.text(event)
    assert len(texts) == 1
    twin = quote("1.25")  # equal but another object: its own entry, the same text
    assert texts.text(twin) == texts.text(event)
    assert len(texts) == 2


def test_the_oldest_texts_make_room():
    texts = MessageTexts(limit=3)
    events = [quote(str(n)) for n in range(1, 6)]
    for event in events:
        texts.text(event)
    assert len(texts) == 3
    assert json.loads(texts.text(events[0]))["data"]["best_bid"] == "1"


@pytest.mark.anyio
async def test_clients_share_the_texts_of_the_same_event():
    texts = MessageTexts()
    one, two = FanoutClient(1, 10, texts), FanoutClient(2, 10, texts)
    event = quote("7.5")
    for client in (one, two):
        client.push(event)
        client.reply({"event_type": "SUBSCRIBED_ACK", "data": {}})
    first, second = await one.next_batch(), await two.next_batch()
    assert first == second
    assert json.loads(first[0])["event_type"] == "SUBSCRIBED_ACK"
    assert first[1] is second[1]


def prints(count: int) -> list[MarketTradeReceived]:
    """Trade prints: never coalesced, so each one takes a place in the queue."""
    return [
        MarketTradeReceived(
            MarketTrade("CON.F.US.MES.Z26", Decimal("6000.25"), 1, TradeSide.BUY, timestamp=STAMP)
        )
        for _ in range(count)
    ]


def types(batch: list[str]) -> list[str]:
    return [json.loads(text)["event_type"] for text in batch]


@pytest.mark.anyio
async def test_a_client_past_half_its_queue_is_warned_once_ahead_of_the_events():
    client = FanoutClient(1, 10)
    for event in prints(5):
        client.push(event)
    assert types(await client.next_batch()) == ["TRADE"] * 5
    for event in prints(8):
        client.push(event)
    batch = await client.next_batch()
    assert types(batch) == [SLOW_CONSUMER] + ["TRADE"] * 8
    assert json.loads(batch[0])["data"] == {"queued": 6, "limit": 10}
    # Still behind: no second warning.
    for event in prints(7):
        client.push(event)
    assert types(await client.next_batch()) == ["TRADE"] * 7
    # Caught up (a small batch), then behind again: warned again.
    client.push(prints(1)[0])
    assert types(await client.next_batch()) == ["TRADE"]
    for event in prints(6):
        client.push(event)
    assert types(await client.next_batch()) == [SLOW_CONSUMER] + ["TRADE"] * 6
    assert not client.overflowed


def test_a_flat_position_has_no_side_over_the_websocket_and_over_rest():
    from tradeforge_anyio.service.schemas import PositionOut
    from tradeforge_proto.core.enums import PositionSide
    from tradeforge_proto.core.events import PositionUpdated
    from tradeforge_proto.core.models import Position

    def position(size: int) -> Position:
        return Position(7, 20258288, "CON.F.US.MES.Z26", STAMP, PositionSide.LONG, size, Decimal(0))

    flat = json.loads(MessageTexts().text(PositionUpdated(position(0))))["data"]
    assert (flat["side"], flat["size"]) == (None, 0)
    held = json.loads(MessageTexts().text(PositionUpdated(position(2))))["data"]
    assert (held["side"], held["size"]) == ("LONG", 2)
    assert PositionOut.model_validate(position(0)).side is None
    assert PositionOut.model_validate(position(2)).side == "LONG"
    assert (
        PositionOut.model_validate(position(2)).model_dump(mode="json")["created_at"]
        == (
            flat["created_at"]  # one timestamp form over REST and the WebSocket
        )
    )
