"""The client's frame splitter gives exactly what wsproto alone gives, for any frames, any reads.

A client decodes complete, final, unmasked text frames itself and hands every other frame to
wsproto. The reference here is the same client with the splitter switched off, so that wsproto
reads every byte: both are fed the same bytes in the same reads, and must produce the same events,
the same replies (pongs, closes) and the same state after every read.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType

from tradeforge_proto.websocket import (
    ConnectionClosed,
    TextReceived,
    WebSocketClient,
    WebSocketServer,
    WebSocketState,
    WsEvent,
)

from .test_websocket import HOST, TARGET, chunked, pump, request_for


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    wide: int = 0,
) -> bytes:
    """One frame as written on the wire; ``wide`` forces a 2- or 8-byte length (non-minimal)."""
    size = len(payload)
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    mask_bit = 0x80 if mask is not None else 0
    if wide == 8 or size >= 65_536:
        head = bytes([first, mask_bit | 127]) + size.to_bytes(8, "big")
    elif wide == 2 or size >= 126:
        head = bytes([first, mask_bit | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([first, mask_bit | size])
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


texts = st.text(max_size=200).map(lambda t: t.encode("utf-8"))
invalid_utf8 = st.sampled_from([b"\xff", b"ok\xc3", b"\xed\xa0\x80", b"a\x80b"])
payloads = st.one_of(texts, texts, invalid_utf8, st.binary(max_size=60))

# Mostly what a hub sends (complete text frames), among everything else a peer may write.
frames = st.one_of(
    payloads.map(lambda p: frame(1, p)),
    payloads.map(lambda p: frame(1, p)),
    payloads.map(lambda p: frame(1, p)),
    st.builds(lambda p, w: frame(1, p, wide=w), payloads, st.sampled_from([2, 8])),
    st.builds(lambda p: frame(1, p, fin=False), payloads),
    st.builds(lambda p, fin: frame(0, p, fin=fin), payloads, st.booleans()),
    st.builds(lambda p: frame(2, p), st.binary(max_size=60)),
    st.builds(lambda p: frame(9, p), st.binary(max_size=20)),
    st.builds(lambda p: frame(10, p), st.binary(max_size=20)),
    st.builds(lambda p: frame(1, p, rsv=4), texts),
    st.builds(lambda p: frame(1, p, mask=b"\x01\x02\x03\x04"), texts),
    st.builds(lambda p: frame(3, p), texts),
    st.just(frame(8, b"\x03\xe8bye")),
    st.just(frame(1, b"x" * 65_536)),  # the 8-byte length
    st.binary(min_size=1, max_size=6),
)
read_sizes = st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=6).map(
    lambda sizes: [*sizes, 8192]  # and a read that takes a long frame in a few steps
)


def open_client(split: bool, max_message_size: int, pieces: bool) -> tuple[WebSocketClient, bytes]:
    """A client that sent its upgrade request, and the server's 101 it has yet to read."""
    client = WebSocketClient(HOST, TARGET, max_message_size=max_message_size, text_pieces=pieces)
    client._split = split
    server, _ = request_for(client)
    server.accept()
    return client, server.data_to_send()


def run(
    client: WebSocketClient, reads: list[bytes]
) -> list[tuple[list[WsEvent], list[str], WebSocketState]]:
    """Per read: the events, what the client wrote back (unmasked, as frames) and its state."""
    peer = Connection(ConnectionType.SERVER)  # reads the client's masked replies
    results = []
    for data in reads:
        events = client.receive_data(data)
        peer.receive_data(client.data_to_send())
        results.append((events, [repr(e) for e in peer.events()], client.state))
    return results


@settings(max_examples=300, deadline=None)
@given(
    st.lists(frames, max_size=12),
    read_sizes,
    st.sampled_from([4 * 1024 * 1024, 100, 1]),
    st.booleans(),
    st.booleans(),
)
def test_the_splitter_reads_every_frame_as_wsproto_does(
    stream: list[bytes], sizes: list[int], max_message_size: int, pieces: bool, behind_101: bool
):
    fast, response = open_client(True, max_message_size, pieces)
    slow, same_response = open_client(False, max_message_size, pieces)
    assert response[:12] == same_response[:12] == b"HTTP/1.1 101"
    body = b"".join(stream)
    if behind_101:  # frames arriving in the reads that carry the 101
        data = response + body
        reads_fast, reads_slow = chunked(data, sizes), chunked(same_response + body, sizes)
    else:
        fast.receive_data(response)
        slow.receive_data(same_response)
        reads_fast = reads_slow = chunked(body, sizes)
    if len(response) != len(same_response):  # keys differ per client; lengths do not
        raise AssertionError("the two upgrade responses differ in length")
    ours, reference = run(fast, [*reads_fast, b""]), run(slow, [*reads_slow, b""])
    # A frame with an invalid header may be refused a few bytes later than wsproto refuses it
    # (once its header is complete): the same events and replies in the same order, the same end.
    assert everything(ours) == everything(reference)
    assert ours[-1][2] is reference[-1][2]
    if not any(isinstance(e, ConnectionClosed) and e.code == 1002 for e in everything(ours)[0]):
        assert ours == reference  # otherwise each event comes in the very read wsproto gives it


def everything(
    results: list[tuple[list[WsEvent], list[str], WebSocketState]],
) -> tuple[list[WsEvent], list[str]]:
    """All the events and all the replies of a run, over every read."""
    return (
        [e for events, _, _ in results for e in events],
        [r for _, replies, _ in results for r in replies],
    )


def test_a_text_frame_split_across_reads_is_one_message():
    client, response = open_client(True, 4 * 1024 * 1024, False)
    client.receive_data(response)
    data = frame(1, "é".encode() * 10) + frame(1, b"next")
    events = [e for read in chunked(data, [3, 7, 1]) for e in client.receive_data(read)]
    assert events == [TextReceived("é" * 10), TextReceived("next")]


def test_a_close_among_text_frames_ends_the_reading():
    client, response = open_client(True, 4 * 1024 * 1024, False)
    client.receive_data(response)
    events = client.receive_data(frame(1, b"a") + frame(8, b"\x03\xe8") + frame(1, b"late"))
    assert events == [TextReceived("a"), ConnectionClosed(1000, "", by_peer=True)]
    assert client.data_to_send()  # our reply to the close
    assert client.receive_data(frame(1, b"later")) == []


def test_server_frames_behind_the_101_in_one_read():
    client = WebSocketClient(HOST, TARGET)
    server, _ = request_for(client)
    server.accept()
    server.send_text("first")
    server.send_text("second")
    events = pump(server, client)
    assert events[1:] == [TextReceived("first"), TextReceived("second")]


def test_the_server_role_reads_through_wsproto_alone():
    server = WebSocketServer()
    assert server._split is False  # client frames are masked: wsproto unmasks them


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (frame(1, b"abc", wide=2), "Payload length used 2 bytes when 1 would have sufficed"),
        (frame(1, b"abc", wide=8), "Payload length used 8 bytes when 2 would have sufficed"),
        (
            frame(1, b"\xff"),
            "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte",
        ),
    ],
)
def test_frames_refused_by_the_rules_are_refused_when_read_whole(data: bytes, reason: str):
    client, response = open_client(True, 4 * 1024 * 1024, False)
    client.receive_data(response)
    code = 1007 if "utf-8" in reason else 1002
    assert client.receive_data(frame(1, b"ok") + data) == [
        TextReceived("ok"),
        ConnectionClosed(code, reason, by_peer=False),
    ]
