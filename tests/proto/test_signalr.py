"""The SignalR JSON hub protocol: records, framing, both connection roles, and negotiate."""

from __future__ import annotations

import contextlib
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge_proto.core import LocalProtocolError, RemoteProtocolError
from tradeforge_proto.core.operations import HttpResponse
from tradeforge_proto.signalr import (
    RS,
    Ack,
    AckReceived,
    CancelInvocation,
    CancelReceived,
    Close,
    CloseReceived,
    Completion,
    CompletionReceived,
    HandshakeCompleted,
    HandshakeFailed,
    HandshakeReceived,
    HandshakeRequest,
    HandshakeResponse,
    HubConnection,
    HubEvent,
    HubRole,
    HubState,
    Invocation,
    InvocationReceived,
    MessageType,
    NegotiateRedirect,
    Negotiation,
    Ping,
    PingReceived,
    RecordBuffer,
    Sequence,
    SequenceReceived,
    StreamInvocation,
    StreamInvocationReceived,
    StreamItem,
    StreamItemReceived,
    connect_url,
    decode,
    decode_handshake_request,
    decode_handshake_response,
    encode,
    negotiate_request,
    negotiate_response_body,
    parse_negotiate,
)

# --------------------------------------------------------------------------------------------
# Records: exact bytes from the protocol reference, both ways

EXAMPLES: list[tuple[Any, str]] = [
    (Ping(), '{"type":6}'),
    (
        Invocation("Send", (42, "hi"), invocation_id="0"),
        '{"type":1,"invocationId":"0","target":"Send","arguments":[42,"hi"]}',
    ),
    (
        Invocation("Send", (42, "Test Message")),
        '{"type":1,"target":"Send","arguments":[42,"Test Message"]}',
    ),
    (
        Invocation("Send", (), "1", {"k": "v"}, ("2", "3")),
        '{"type":1,"headers":{"k":"v"},"invocationId":"1","target":"Send","arguments":[],'
        '"streamIds":["2","3"]}',
    ),
    (
        Completion("123", 42, has_result=True),
        '{"type":3,"invocationId":"123","result":42}',
    ),
    (
        Completion("123", None, has_result=True),
        '{"type":3,"invocationId":"123","result":null}',
    ),
    (
        Completion("123", error="It didn't work!"),
        '{"type":3,"invocationId":"123","error":"It didn\'t work!"}',
    ),
    (Completion("123"), '{"type":3,"invocationId":"123"}'),
    (StreamItem("7", {"a": [1, None]}), '{"type":2,"invocationId":"7","item":{"a":[1,null]}}'),
    (StreamItem("7", None), '{"type":2,"invocationId":"7","item":null}'),
    (
        StreamInvocation("4", "Counter", (10, 500)),
        '{"type":4,"invocationId":"4","target":"Counter","arguments":[10,500]}',
    ),
    (
        StreamInvocation("4", "Upload", (), ("5",)),
        '{"type":4,"invocationId":"4","target":"Upload","arguments":[],"streamIds":["5"]}',
    ),
    (CancelInvocation("4"), '{"type":5,"invocationId":"4"}'),
    (
        Close("Connection closed because of an error!", allow_reconnect=True),
        '{"type":7,"error":"Connection closed because of an error!","allowReconnect":true}',
    ),
    (Close(), '{"type":7}'),
    (Close(allow_reconnect=False), '{"type":7,"allowReconnect":false}'),
    (Ack(1394), '{"type":8,"sequenceId":1394}'),
    (Sequence(1234), '{"type":9,"sequenceId":1234}'),
]


@pytest.mark.parametrize(("message", "text"), EXAMPLES)
def test_encode_writes_the_exact_record(message, text):
    assert encode(message) == text + RS


@pytest.mark.parametrize(("message", "text"), EXAMPLES)
def test_decode_reads_the_exact_record(message, text):
    assert decode(text) == message


def test_ping_record_bytes():
    assert encode(Ping()).encode() == bytes.fromhex("7b2274797065223a367d1e")


def test_handshake_records():
    request = encode(HandshakeRequest())
    assert request == '{"protocol":"json","version":1}\x1e'
    assert request.encode().hex(" ") == (
        "7b 22 70 72 6f 74 6f 63 6f 6c 22 3a 22 6a 73 6f 6e 22 2c 22 76 65 72 73 69 6f 6e 22 "
        "3a 31 7d 1e"
    )
    assert encode(HandshakeResponse()) == "{}\x1e"
    assert encode(HandshakeResponse("nope")) == '{"error":"nope"}\x1e'
    assert decode_handshake_request(request[:-1]) == HandshakeRequest("json", 1)
    assert decode_handshake_response("{}") == HandshakeResponse()
    assert decode_handshake_response('{"error":null}') == HandshakeResponse()
    assert decode_handshake_response('{"error":"x"}') == HandshakeResponse("x")


def test_message_type_numbers():
    assert [m.value for m in MessageType] == list(range(1, 10))
    assert int(MessageType.PING) == 6


def test_headers_from_any_mapping_are_written():
    message = Invocation("T", (), headers=MappingProxyType({"a": "b"}))
    assert encode(message) == '{"type":1,"headers":{"a":"b"},"target":"T","arguments":[]}' + RS


def test_decode_tolerates_nulls_and_extra_fields():
    assert decode(
        '{"type":1,"target":"T","arguments":[],"invocationId":null,"streamIds":null,'
        '"headers":null,"extra":1}'
    ) == Invocation("T")
    assert decode('{"type":3,"invocationId":"1","error":null}') == Completion("1")
    assert decode('{"type":3,"invocationId":"1","result":5,"error":null}') == Completion(
        "1", 5, has_result=True
    )
    assert decode('{"type":7,"error":null,"allowReconnect":null}') == Close()
    assert decode('{"type":6,"headers":{"x":"y"}}') == Ping()
    assert decode('{"type":4,"invocationId":"1","target":"T","arguments":[]}') == (
        StreamInvocation("1", "T")
    )


@pytest.mark.parametrize(
    "message",
    [
        Invocation(""),
        Invocation("T", invocation_id=""),
        StreamItem("", 1),
        Completion("", 1, has_result=True),
        Completion("1", 5, error="boom"),
        Completion("1", None, error="boom", has_result=True),
        Completion("1", 5),
        StreamInvocation("1", ""),
        StreamInvocation("", "T"),
        CancelInvocation(""),
        Invocation("T", (object(),)),
        Invocation("T", (2**70,)),
    ],
)
def test_encode_refuses_what_the_peer_would_reject(message):
    with pytest.raises(LocalProtocolError):
        encode(message)


def test_encode_refuses_foreign_objects():
    with pytest.raises(LocalProtocolError, match="cannot encode str"):
        encode("hello")  # type: ignore[arg-type]


def test_unknown_message_types_are_skipped():
    assert decode('{"type":42,"anything":[1]}') is None
    assert decode('{"type":0}') is None
    assert decode('{"type":-1}') is None


MALFORMED = [
    ("{", "invalid JSON"),
    ("", "invalid JSON"),
    ("[1,2]", "not a JSON object"),
    ('"x"', "not a JSON object"),
    ("{}", "no integer 'type'"),
    ('{"type":"1"}', "no integer 'type'"),
    ('{"type":true}', "no integer 'type'"),
    ('{"type":1.0}', "no integer 'type'"),
    ('{"type":1,"arguments":[]}', "'target'"),
    ('{"type":1,"target":"","arguments":[]}', "'target'"),
    ('{"type":1,"target":5,"arguments":[]}', "'target'"),
    ('{"type":1,"target":"T"}', "'arguments'"),
    ('{"type":1,"target":"T","arguments":{}}', "'arguments'"),
    ('{"type":1,"target":"T","arguments":[],"invocationId":""}', "'invocationId'"),
    ('{"type":1,"target":"T","arguments":[],"invocationId":1}', "'invocationId'"),
    ('{"type":1,"target":"T","arguments":[],"headers":[]}', "'headers'"),
    ('{"type":1,"target":"T","arguments":[],"headers":{"a":1}}', "'headers'"),
    ('{"type":1,"target":"T","arguments":[],"streamIds":"1"}', "'streamIds'"),
    ('{"type":1,"target":"T","arguments":[],"streamIds":[1]}', "'streamIds'"),
    ('{"type":2,"item":1}', "'invocationId'"),
    ('{"type":2,"invocationId":"1"}', "'item'"),
    ('{"type":3,"result":1}', "'invocationId'"),
    ('{"type":3,"invocationId":""}', "'invocationId'"),
    ('{"type":3,"invocationId":"1","result":1,"error":"e"}', "both a result and an error"),
    ('{"type":3,"invocationId":"1","result":null,"error":"e"}', "both a result and an error"),
    ('{"type":3,"invocationId":"1","error":5}', "'error'"),
    ('{"type":4,"target":"T","arguments":[]}', "'invocationId'"),
    ('{"type":4,"invocationId":"1","arguments":[]}', "'target'"),
    ('{"type":4,"invocationId":"1","target":"T"}', "'arguments'"),
    ('{"type":4,"invocationId":"1","target":"T","arguments":[],"streamIds":[null]}', "streamIds"),
    ('{"type":5}', "'invocationId'"),
    ('{"type":7,"error":1}', "'error'"),
    ('{"type":7,"allowReconnect":"yes"}', "'allowReconnect'"),
    ('{"type":8}', "'sequenceId'"),
    ('{"type":8,"sequenceId":"1"}', "'sequenceId'"),
    ('{"type":9,"sequenceId":1.5}', "'sequenceId'"),
    ('{"type":9,"sequenceId":false}', "'sequenceId'"),
    ('{"type":6,"x":"\ud800"}', "invalid JSON"),
]


@pytest.mark.parametrize(("record", "reason"), MALFORMED)
def test_malformed_records_raise_remote_protocol_error(record, reason):
    with pytest.raises(RemoteProtocolError, match=reason):
        decode(record)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ("nope", "invalid JSON"),
        ("[]", "not a JSON object"),
        ('{"type":6}', "received a hub message"),
        ('{"protocol":"json"}', "'version'"),
        ('{"protocol":1,"version":1}', "'protocol'"),
        ('{"protocol":"json","version":"1"}', "'version'"),
    ],
)
def test_malformed_handshake_requests(record, reason):
    with pytest.raises(RemoteProtocolError, match=reason):
        decode_handshake_request(record)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ("nope", "invalid JSON"),
        ("1", "not a JSON object"),
        ('{"type":6}', "received a hub message"),
        ('{"error":1}', "'error'"),
    ],
)
def test_malformed_handshake_responses(record, reason):
    with pytest.raises(RemoteProtocolError, match=reason):
        decode_handshake_response(record)


# --------------------------------------------------------------------------------------------
# Framing


def test_record_buffer_splits_many_records_in_one_message():
    buffer = RecordBuffer()
    assert buffer.feed('{"type":6}\x1e{"type":8,"sequenceId":1}\x1e') == [
        '{"type":6}',
        '{"type":8,"sequenceId":1}',
    ]
    assert buffer.buffered == 0
    assert buffer.feed("") == []
    assert buffer.feed(b"") == []


def test_record_buffer_holds_a_tail_across_messages():
    buffer = RecordBuffer()
    assert buffer.feed('{"ty') == []
    assert buffer.feed("pe") == []
    assert buffer.buffered == 6
    assert buffer.feed('":6}\x1e{"type"') == ['{"type":6}']
    assert buffer.buffered == 7
    assert buffer.feed(":6}\x1e") == ['{"type":6}']
    assert buffer.buffered == 0


def test_record_buffer_keeps_empty_records_for_the_decoder_to_refuse():
    assert RecordBuffer().feed("\x1e\x1e") == ["", ""]


def test_record_buffer_decodes_utf8_split_across_messages():
    data = '{"a":"é€😀"}\x1e'.encode()
    for cut in range(len(data) + 1):
        buffer = RecordBuffer()
        records = buffer.feed(data[:cut]) + buffer.feed(data[cut:])
        assert records == ['{"a":"é€😀"}']


def test_record_buffer_refuses_invalid_utf8():
    with pytest.raises(RemoteProtocolError, match="not valid UTF-8"):
        RecordBuffer().feed(b'{"a":"\xff"}\x1e')


def test_record_buffer_refuses_text_inside_a_split_character():
    buffer = RecordBuffer()
    buffer.feed(b"\xc3")
    with pytest.raises(RemoteProtocolError, match="middle of a UTF-8 character"):
        buffer.feed("\xa9\x1e")


def test_record_buffer_bounds_the_incomplete_tail():
    buffer = RecordBuffer(max_size=10)
    assert buffer.feed("x" * 10) == []
    with pytest.raises(RemoteProtocolError, match="exceeds 10 characters"):
        buffer.feed("y")
    buffer = RecordBuffer(max_size=10)
    with pytest.raises(RemoteProtocolError, match="exceeds 10"):
        buffer.feed("{}\x1e" + "z" * 11)
    # Complete records are never limited, only what waits for its separator.
    assert RecordBuffer(max_size=10).feed("x" * 50 + RS) == ["x" * 50]


RECORDS = [text + RS for _, text in EXAMPLES]


@pytest.mark.parametrize("record", RECORDS)
def test_every_split_point_of_every_record(record):
    (expected,) = [m for m, text in EXAMPLES if text + RS == record]
    for cut in range(len(record) + 1):
        client = _open_client()
        events = client.receive(record[:cut]) + client.receive(record[cut:])
        assert events == [_event_of(expected)], cut


def test_several_records_in_one_message():
    client = _open_client()
    events = client.receive("".join(RECORDS[:-1]))  # everything before the last Close
    # Records after the first Close are dropped.
    assert events == [_event_of(m) for m, _ in EXAMPLES[:14]]


def test_handshake_and_ping_in_one_message():
    client = HubConnection(HubRole.CLIENT)
    assert client.receive(bytes.fromhex("7b7d1e7b2274797065223a367d1e")) == [
        HandshakeCompleted(),
        PingReceived(),
    ]
    assert client.state is HubState.OPEN


def test_handshake_split_across_messages():
    client = HubConnection(HubRole.CLIENT)
    assert client.receive("{") == []
    assert client.state is HubState.HANDSHAKING
    assert client.receive("}") == []
    assert client.receive('\x1e{"type"') == [HandshakeCompleted()]
    assert client.receive(":6}\x1e") == [PingReceived()]
    server = HubConnection(HubRole.SERVER)
    request = '{"protocol":"json","version":1}\x1e'
    for cut in range(len(request) + 1):
        server = HubConnection(HubRole.SERVER)
        events = server.receive(request[:cut]) + server.receive(request[cut:].encode())
        assert events == [HandshakeReceived("json", 1)]


def test_incomplete_tail_over_the_limit_breaks_the_connection():
    client = HubConnection(HubRole.CLIENT, max_buffer_size=64)
    client.receive("{}\x1e")
    client.receive("x" * 64)
    with pytest.raises(RemoteProtocolError, match="exceeds 64"):
        client.receive("x")
    assert client.state is HubState.CLOSED


# --------------------------------------------------------------------------------------------
# Connections, paired in memory


def _event_of(message: Any) -> HubEvent:
    """The event a connection reports for a received message."""
    if isinstance(message, Invocation):
        return InvocationReceived(
            message.target,
            message.arguments,
            message.invocation_id,
            message.headers,
            message.stream_ids,
        )
    if isinstance(message, Completion):
        return CompletionReceived(
            message.invocation_id, message.result, message.error, message.has_result
        )
    if isinstance(message, StreamItem):
        return StreamItemReceived(message.invocation_id, message.item)
    if isinstance(message, StreamInvocation):
        return StreamInvocationReceived(
            message.invocation_id, message.target, message.arguments, message.stream_ids
        )
    if isinstance(message, CancelInvocation):
        return CancelReceived(message.invocation_id)
    if isinstance(message, Ping):
        return PingReceived()
    if isinstance(message, Close):
        return CloseReceived(message.error, message.allow_reconnect is True)
    if isinstance(message, Ack):
        return AckReceived(message.sequence_id)
    assert isinstance(message, Sequence)
    return SequenceReceived(message.sequence_id)


def _open_client() -> HubConnection:
    client = HubConnection(HubRole.CLIENT)
    assert client.receive("{}\x1e") == [HandshakeCompleted()]
    return client


class Pair:
    """A client and a server wired together in memory."""

    def __init__(self) -> None:
        self.client = HubConnection(HubRole.CLIENT)
        self.server = HubConnection(HubRole.SERVER)

    def to_server(self) -> list[HubEvent]:
        return self.server.receive(self.client.data_to_send())

    def to_client(self) -> list[HubEvent]:
        return self.client.receive(self.server.data_to_send())

    def handshake(self) -> Pair:
        assert self.to_server() == [HandshakeReceived("json", 1)]
        self.server.accept_handshake()
        assert self.server.state is HubState.OPEN
        assert self.to_client() == [HandshakeCompleted()]
        assert self.client.state is HubState.OPEN
        return self


def test_client_queues_its_handshake_at_construction():
    client = HubConnection(HubRole.CLIENT)
    assert client.role is HubRole.CLIENT
    assert client.state is HubState.HANDSHAKING
    assert client.data_to_send() == '{"protocol":"json","version":1}\x1e'
    assert client.data_to_send() == ""
    other = HubConnection(HubRole.CLIENT, protocol="messagepack", version=2)
    assert other.data_to_send() == '{"protocol":"messagepack","version":2}\x1e'
    server = HubConnection(HubRole.SERVER)
    assert server.role is HubRole.SERVER
    assert server.data_to_send() == ""


def test_invoke_complete_round_trip():
    pair = Pair().handshake()
    invocation_id = pair.client.invoke("SubscribeOrders", 123)
    assert invocation_id == "0"
    assert pair.client.pending_invocations == frozenset({"0"})
    assert pair.to_server() == [InvocationReceived("SubscribeOrders", (123,), "0")]
    pair.server.complete("0")
    assert pair.to_client() == [CompletionReceived("0", None, None, True)]
    assert pair.client.pending_invocations == frozenset()
    assert pair.client.invoke("Other") == "1"


def test_completion_variants_reach_the_caller():
    pair = Pair().handshake()
    ids = [pair.client.invoke("A"), pair.client.invoke("B"), pair.client.invoke("C")]
    assert ids == ["0", "1", "2"]
    pair.to_server()
    pair.server.complete("0", {"x": 1})
    pair.server.complete("1", error="boom")
    pair.server.complete("2", has_result=False)
    assert pair.to_client() == [
        CompletionReceived("0", {"x": 1}, None, True),
        CompletionReceived("1", None, "boom", False),
        CompletionReceived("2", None, None, False),
    ]
    assert pair.client.pending_invocations == frozenset()
    with pytest.raises(LocalProtocolError, match="both a result and an error"):
        pair.server.complete("3", 1, error="boom")


def test_completion_for_an_unknown_id_is_still_reported():
    client = _open_client()
    assert client.receive('{"type":3,"invocationId":"99","result":1}\x1e') == [
        CompletionReceived("99", 1, None, True)
    ]


def test_server_push_has_no_invocation_id_and_is_never_tracked():
    pair = Pair().handshake()
    order = {"id": 1, "accountId": 2, "status": 1}
    pair.server.send("GatewayUserOrder", order)
    assert pair.server.pending_invocations == frozenset()
    assert pair.to_client() == [InvocationReceived("GatewayUserOrder", (order,), None)]
    pair.client.send("Fire", 1, "two")
    assert pair.client.pending_invocations == frozenset()
    assert pair.to_server() == [InvocationReceived("Fire", (1, "two"), None)]


def test_client_results_answer_a_server_invocation():
    pair = Pair().handshake()
    invocation_id = pair.server.invoke("GetClientName")
    assert pair.to_client() == [InvocationReceived("GetClientName", (), invocation_id)]
    pair.client.complete(invocation_id, "bot")
    assert pair.to_server() == [CompletionReceived(invocation_id, "bot", None, True)]
    assert pair.server.pending_invocations == frozenset()


def test_ping_both_ways():
    pair = Pair().handshake()
    pair.client.ping()
    pair.server.ping()
    assert pair.client.data_to_send() == '{"type":6}\x1e'
    pair.client.ping()
    assert pair.to_server() == [PingReceived()]
    assert pair.to_client() == [PingReceived()]


def test_server_close_with_reconnect_allowed():
    pair = Pair().handshake()
    pair.server.close(error="x", allow_reconnect=True)
    assert pair.server.state is HubState.CLOSED
    assert pair.to_client() == [CloseReceived("x", True)]
    assert pair.client.state is HubState.CLOSED
    assert pair.client.receive('{"type":6}\x1e') == []  # data after CLOSED is ignored
    with pytest.raises(LocalProtocolError, match="after the connection closed"):
        pair.client.invoke("X")


def test_client_close_is_a_bare_close_message():
    pair = Pair().handshake()
    pair.client.close()
    assert pair.client.data_to_send() == '{"type":7}\x1e'
    pair.client.close()  # closing twice does nothing
    assert pair.client.data_to_send() == ""
    assert pair.server.receive('{"type":7}\x1e') == [CloseReceived(None, False)]


def test_records_after_a_close_in_the_same_message_are_dropped():
    client = _open_client()
    assert client.receive('{"type":7}\x1e{"type":6}\x1e{"type":6}\x1e') == [
        CloseReceived(None, False)
    ]


def test_handshake_rejection():
    pair = Pair()
    pair.to_server()
    pair.server.reject_handshake("Requested protocol 'json' is not available.")
    assert pair.server.state is HubState.CLOSED
    assert pair.to_client() == [HandshakeFailed("Requested protocol 'json' is not available.")]
    assert pair.client.state is HubState.CLOSED


def test_handshake_failure_ignores_what_follows():
    client = HubConnection(HubRole.CLIENT)
    assert client.receive('{"error":"no"}\x1e{"type":6}\x1e') == [HandshakeFailed("no")]
    assert client.receive('{"type":6}\x1e') == []


def test_server_requires_a_handshake_first():
    server = HubConnection(HubRole.SERVER)
    with pytest.raises(RemoteProtocolError, match="expected a handshake request"):
        server.receive('{"type":1,"target":"T","arguments":[]}\x1e')
    assert server.state is HubState.CLOSED
    assert server.receive("{}\x1e") == []


def test_client_requires_a_handshake_response_first():
    client = HubConnection(HubRole.CLIENT)
    with pytest.raises(RemoteProtocolError, match="expected a handshake response"):
        client.receive('{"type":6}\x1e')
    assert client.state is HubState.CLOSED


def test_messages_right_after_the_handshake_request_are_reported():
    server = HubConnection(HubRole.SERVER)
    events = server.receive('{"protocol":"json","version":1}\x1e{"type":6}\x1e')
    assert events == [HandshakeReceived("json", 1), PingReceived()]
    assert server.state is HubState.HANDSHAKING
    assert server.receive('{"type":1,"target":"T","arguments":[]}\x1e') == [
        InvocationReceived("T", (), None)
    ]
    with pytest.raises(LocalProtocolError, match="before the handshake completed"):
        server.send("Early")
    server.accept_handshake()
    server.send("Now")
    assert server.data_to_send() == '{}\x1e{"type":1,"target":"Now","arguments":[]}\x1e'


def test_sending_before_the_handshake_is_refused():
    client = HubConnection(HubRole.CLIENT)
    for action in (
        lambda: client.invoke("X"),
        lambda: client.send("X"),
        client.ping,
        lambda: client.complete("1"),
        lambda: client.stream("X"),
        lambda: client.stream_item("1", 2),
        lambda: client.cancel("1"),
        lambda: client.ack(1),
        lambda: client.sequence(1),
    ):
        with pytest.raises(LocalProtocolError, match="before the handshake completed"):
            action()


def test_handshake_answers_are_server_only_and_once():
    client = HubConnection(HubRole.CLIENT)
    with pytest.raises(LocalProtocolError, match="only a server"):
        client.accept_handshake()
    with pytest.raises(LocalProtocolError, match="only a server"):
        client.reject_handshake("x")
    server = HubConnection(HubRole.SERVER)
    with pytest.raises(LocalProtocolError, match="no handshake is waiting"):
        server.accept_handshake()
    server.receive('{"protocol":"json","version":1}\x1e')
    server.accept_handshake()
    with pytest.raises(LocalProtocolError, match="no handshake is waiting"):
        server.reject_handshake("late")


def test_close_before_the_handshake_sends_nothing():
    client = HubConnection(HubRole.CLIENT)
    client.data_to_send()
    client.close()
    assert client.state is HubState.CLOSED
    assert client.data_to_send() == ""
    assert client.receive("{}\x1e") == []


def test_streams_cancel_and_stateful_reconnect_messages():
    pair = Pair().handshake()
    stream_id = pair.client.stream("Counter", 10)
    assert pair.client.pending_invocations == frozenset({stream_id})
    pair.client.cancel(stream_id)
    pair.client.ack(3)
    pair.client.sequence(4)
    assert pair.to_server() == [
        StreamInvocationReceived(stream_id, "Counter", (10,)),
        CancelReceived(stream_id),
        AckReceived(3),
        SequenceReceived(4),
    ]
    pair.server.stream_item(stream_id, 1)
    pair.server.complete(stream_id, has_result=False)
    assert pair.to_client() == [
        StreamItemReceived(stream_id, 1),
        CompletionReceived(stream_id, None, None, False),
    ]
    assert pair.client.pending_invocations == frozenset()


def test_an_unencodable_call_uses_no_invocation_id():
    client = _open_client()
    with pytest.raises(LocalProtocolError):
        client.invoke("X", object())
    with pytest.raises(LocalProtocolError):
        client.stream("", 1)
    with pytest.raises(LocalProtocolError):
        client.invoke("")
    assert client.pending_invocations == frozenset()
    assert client.invoke("X") == "0"


def test_unknown_types_are_skipped_by_a_connection():
    client = _open_client()
    assert client.receive('{"type":42}\x1e{"type":6}\x1e') == [PingReceived()]


def test_a_malformed_record_breaks_the_connection():
    client = _open_client()
    with pytest.raises(RemoteProtocolError):
        client.receive('{"type":6}\x1e{"type":3,"invocationId":"1","result":1,"error":"e"}\x1e')
    assert client.state is HubState.CLOSED
    assert client.receive('{"type":6}\x1e') == []


@pytest.mark.parametrize(("record", "reason"), MALFORMED)
def test_a_connection_refuses_what_decode_refuses(record, reason):
    client = _open_client()
    with pytest.raises(RemoteProtocolError, match=reason):
        client.receive('{"type":6}' + RS + record + RS)
    assert client.state is HubState.CLOSED


@pytest.mark.parametrize(
    "record",
    [
        '{"type":1,"target":"T","arguments":[1,"a",null]}',
        '{"arguments":[],"type":1,"target":"T"}',
        '{"type":1,"target":"T","arguments":[],"invocationId":"7"}',
        '{"type":1,"target":"T","arguments":[],"headers":{"k":"v"}}',
        '{"type":1,"target":"T","arguments":[],"streamIds":["2"]}',
        '{"type":1,"target":"T","arguments":[],"streamIds":null}',
    ],
)
def test_a_connection_reports_an_invocation_as_decode_reads_it(record):
    client = _open_client()
    (event,) = client.receive(record + RS)
    expected = _event_of(decode(record))
    assert event == expected
    assert repr(event) == repr(expected)
    assert type(event) is InvocationReceived


def test_pushed_invocations_are_ordinary_frozen_events():
    client = _open_client()
    (event,) = client.receive('{"type":1,"target":"Push","arguments":["a",2]}' + RS)
    expected = InvocationReceived("Push", ("a", 2), None)
    assert event == expected
    assert hash(event) == hash(expected)
    assert repr(event) == repr(expected)
    assert (event.headers, event.stream_ids) == (None, ())
    with pytest.raises(AttributeError):
        event.target = "Other"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")


def test_events_are_frozen_and_slotted():
    event = InvocationReceived("T", (), None)
    with pytest.raises(AttributeError):
        event.target = "U"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")
    assert not hasattr(Invocation("T"), "__dict__")


# --------------------------------------------------------------------------------------------
# Properties

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=8,
)
ids = st.text(min_size=1, max_size=8)
targets = st.text(min_size=1, max_size=12)
arguments = st.lists(json_values, max_size=4).map(tuple)
stream_ids = st.lists(ids, max_size=3).map(tuple)
sequence_ids = st.integers(min_value=0, max_value=2**63 - 1)

messages = st.one_of(
    st.builds(
        Invocation,
        targets,
        arguments,
        st.none() | ids,
        st.none() | st.dictionaries(st.text(), st.text(), max_size=3),
        stream_ids,
    ),
    st.builds(StreamItem, ids, json_values),
    st.builds(lambda i, r: Completion(i, r, has_result=True), ids, json_values),
    st.builds(lambda i, e: Completion(i, error=e), ids, st.text()),
    st.builds(Completion, ids),
    st.builds(StreamInvocation, ids, targets, arguments, stream_ids),
    st.builds(CancelInvocation, ids),
    st.just(Ping()),
    st.builds(Close, st.none() | st.text(), st.none() | st.booleans()),
    st.builds(Ack, sequence_ids),
    st.builds(Sequence, sequence_ids),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(messages, max_size=8),
    st.lists(st.integers(min_value=0), max_size=10),
    st.booleans(),
)
def test_encoded_messages_cut_anywhere_decode_in_order(batch, cuts, as_bytes):
    text = "".join(encode(m) for m in batch)
    # As bytes, cuts may fall inside a UTF-8 character.
    payload: str | bytes = text.encode() if as_bytes else text
    points = sorted({c % (len(payload) + 1) for c in cuts})
    chunks = [payload[a:b] for a, b in zip([0, *points], [*points, len(payload)], strict=True)]
    buffer = RecordBuffer()
    decoded = [decode(record) for chunk in chunks for record in buffer.feed(chunk)]
    assert decoded == batch
    assert buffer.buffered == 0


@settings(max_examples=150, deadline=None)
@given(messages)
def test_a_connection_reports_what_was_encoded(message):
    client = _open_client()
    events = client.receive(encode(message))
    assert events == [_event_of(message)]


record_pieces = st.sampled_from([text + RS for _, text in EXAMPLES] + ["{}\x1e", RS, "{"])
payloads = st.one_of(st.text(max_size=40), st.binary(max_size=40), record_pieces)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(list(HubRole)),
    st.booleans(),
    st.lists(payloads, max_size=8),
)
def test_arbitrary_input_raises_only_remote_protocol_error(role, handshake_first, inputs):
    connection = HubConnection(role, max_buffer_size=64)
    if handshake_first:
        opening = '{"protocol":"json","version":1}\x1e' if role is HubRole.SERVER else "{}\x1e"
        inputs = [opening, *inputs]
    try:
        for data in inputs:
            events = connection.receive(data)
            assert all(isinstance(e, HubEvent) for e in events)
    except RemoteProtocolError:
        assert connection.state is HubState.CLOSED


@settings(max_examples=200, deadline=None)
@given(st.text() | st.binary())
def test_decode_raises_only_remote_protocol_error(data):
    with contextlib.suppress(RemoteProtocolError):
        decode(data)


# --------------------------------------------------------------------------------------------
# Negotiate


def test_negotiate_request_for_a_hub_url():
    request = negotiate_request("https://rtc.topstepx.com/hubs/user", access_token="tok.en")
    assert request.method == "POST"
    assert request.path == "/hubs/user/negotiate?negotiateVersion=1"
    assert request.body == b""
    assert request.header("Host") == "rtc.topstepx.com"
    assert request.header("X-Requested-With") == "XMLHttpRequest"
    assert request.header("Authorization") == "Bearer tok.en"
    assert "tok.en" not in repr(request)


def test_negotiate_request_keeps_the_query_and_an_explicit_version():
    request = negotiate_request("https://user:pw@host:8443/hub/?a=1&b=2")
    assert request.path == "/hub/negotiate?a=1&b=2&negotiateVersion=1"
    assert request.header("Host") == "host:8443"
    assert request.header("Authorization") is None
    assert negotiate_request("http://h/hub?negotiateVersion=0").path == (
        "/hub/negotiate?negotiateVersion=0"
    )
    assert negotiate_request("http://h").path == "/negotiate?negotiateVersion=1"
    assert negotiate_request("http://h/hub", version=0).path == "/hub/negotiate?negotiateVersion=0"


def test_negotiate_request_for_a_bare_path_and_stateful_reconnect():
    request = negotiate_request("/hubs/market", use_stateful_reconnect=True)
    assert request.path == "/hubs/market/negotiate?negotiateVersion=1&useStatefulReconnect=true"
    assert request.header("Host") is None
    again = negotiate_request("/h?useStatefulReconnect=true", use_stateful_reconnect=True)
    assert again.path == "/h/negotiate?useStatefulReconnect=true&negotiateVersion=1"


@pytest.mark.parametrize(
    ("url", "token"),
    [("ftp://h/hub", None), ("wss://h/hub", None), ("https://h/hub", ""), ("https://h", "a\nb")],
)
def test_negotiate_request_refuses_bad_input(url, token):
    with pytest.raises(LocalProtocolError):
        negotiate_request(url, access_token=token)


def _answer(body: bytes | str, status: int = 200) -> HttpResponse:
    return HttpResponse(status, (("content-type", "application/json"),), _bytes(body))


def _bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


V1_ANSWER = (
    '{"connectionToken":"05265228-1e2c","connectionId":"807809a5-31bf","negotiateVersion":1,'
    '"availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]},'
    '{"transport":"ServerSentEvents","transferFormats":["Text"]},'
    '{"transport":"LongPolling","transferFormats":["Text","Binary"]}]}'
)


def test_parse_negotiate_version_1():
    negotiation = parse_negotiate(_answer(V1_ANSWER))
    assert negotiation == Negotiation(
        "807809a5-31bf",
        "05265228-1e2c",
        1,
        ("WebSockets", "ServerSentEvents", "LongPolling"),
    )
    assert "05265228" not in repr(negotiation)


def test_parse_negotiate_version_0_uses_the_connection_id_as_token():
    answer = '{"connectionId":"abc","availableTransports":[{"transport":"WebSockets"}]}'
    negotiation = parse_negotiate(_answer(answer))
    assert negotiation == Negotiation("abc", "abc", 0, ("WebSockets",))


def test_parse_negotiate_stateful_reconnect():
    body = negotiate_response_body("i", "t")[:-1] + b',"useStatefulReconnect":true}'
    negotiation = parse_negotiate(_answer(body))
    assert isinstance(negotiation, Negotiation)
    assert negotiation.use_stateful_reconnect is True


def test_parse_negotiate_redirect():
    redirect = parse_negotiate(
        _answer('{"url":"https://x.service.signalr.net/client/?hub=h","accessToken":"jwt.sig"}')
    )
    assert redirect == NegotiateRedirect("https://x.service.signalr.net/client/?hub=h", "jwt.sig")
    assert "jwt.sig" not in repr(redirect)
    assert parse_negotiate(_answer('{"url":"https://a/b"}')) == NegotiateRedirect(
        "https://a/b", None
    )
    assert repr(NegotiateRedirect("u", None)) == "NegotiateRedirect(url='u', access_token=None)"


@pytest.mark.parametrize(
    ("answer", "status", "reason"),
    [
        ('{"error":"Negotiate version 2 is not supported."}', 200, "not supported"),
        ('{"ProtocolVersion":"1.5","ConnectionId":"x"}', 200, "classic ASP.NET SignalR"),
        (
            '{"connectionId":"a","availableTransports":[{"transport":"LongPolling"}]}',
            200,
            "no text",
        ),
        ('{"connectionId":"a"}', 200, "no text WebSockets"),
        (
            '{"connectionId":"a","availableTransports":'
            '[{"transport":"WebSockets","transferFormats":["Binary"]}]}',
            200,
            "no text WebSockets",
        ),
        ("<html>", 200, "not valid JSON"),
        ("[1]", 200, "not a JSON object"),
        (V1_ANSWER, 401, "HTTP 401"),
        (V1_ANSWER, 500, "HTTP 500"),
        ('{"url":5}', 200, "redirect"),
        ('{"url":""}', 200, "redirect"),
        ('{"url":"https://a","accessToken":1}', 200, "redirect"),
        ('{"negotiateVersion":"1"}', 200, "negotiateVersion"),
        ('{"negotiateVersion":-1}', 200, "negotiateVersion"),
        ('{"connectionId":1}', 200, "connectionId"),
        ('{"connectionToken":1}', 200, "connectionToken"),
        ('{"useStatefulReconnect":"yes"}', 200, "useStatefulReconnect"),
        ('{"availableTransports":{}}', 200, "availableTransports"),
        ('{"availableTransports":["WebSockets"]}', 200, "transport"),
        ('{"availableTransports":[{"transport":1}]}', 200, "transport"),
    ],
)
def test_parse_negotiate_failures(answer, status, reason):
    with pytest.raises(RemoteProtocolError, match=reason):
        parse_negotiate(_answer(answer, status))


def test_negotiate_response_body_round_trips():
    body = negotiate_response_body(
        "id-1", "token-1", transports=("WebSockets", "ServerSentEvents", "Custom")
    )
    assert body.startswith(
        b'{"connectionId":"id-1","connectionToken":"token-1","negotiateVersion":1'
    )
    assert b'{"transport":"Custom","transferFormats":["Text"]}' in body
    assert parse_negotiate(_answer(body)) == Negotiation(
        "id-1", "token-1", 1, ("WebSockets", "ServerSentEvents", "Custom")
    )
    v0 = negotiate_response_body("id-0", None, version=0)
    assert b"connectionToken" not in v0
    assert parse_negotiate(_answer(v0)) == Negotiation("id-0", "id-0", 0, ("WebSockets",))


def test_negotiate_response_body_checks_the_token_against_the_version():
    with pytest.raises(LocalProtocolError, match="needs a connection token"):
        negotiate_response_body("id", None)
    with pytest.raises(LocalProtocolError, match="has no connection token"):
        negotiate_response_body("id", "t", version=0)


def test_connect_url_after_negotiate():
    negotiation = Negotiation("id", "a+b/c=", 1, ("WebSockets",))
    assert connect_url("https://rtc.topstepx.com/hubs/user", negotiation=negotiation) == (
        "wss://rtc.topstepx.com/hubs/user?id=a%2Bb%2Fc%3D"
    )
    assert connect_url(
        "http://localhost:5000/hub?x=1", negotiation=negotiation, access_token="t k&n"
    ) == ("ws://localhost:5000/hub?x=1&id=a%2Bb%2Fc%3D&access_token=t%20k%26n")


def test_connect_url_skipping_negotiate():
    assert connect_url("https://h/hubs/user") == "wss://h/hubs/user"
    assert connect_url("HTTP://h/hub", access_token="tok") == "ws://h/hub?access_token=tok"
    assert connect_url("wss://h/hub") == "wss://h/hub"
    assert connect_url("ws://h/hub#frag") == "ws://h/hub"
    tokenless = Negotiation("id", None, 1, ("WebSockets",))
    assert connect_url("https://h/hub", negotiation=tokenless) == "wss://h/hub"


@pytest.mark.parametrize(
    ("url", "token"), [("ftp://h/hub", None), ("/hub", None), ("https://h", "")]
)
def test_connect_url_refuses_bad_input(url, token):
    with pytest.raises(LocalProtocolError):
        connect_url(url, access_token=token)
