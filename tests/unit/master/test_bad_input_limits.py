"""protos.limits: the one message-size limit, and batches split under it."""

from __future__ import annotations

from protos.limits import GRPC_MESSAGE_OPTIONS, MAX_MESSAGE_BYTES, batches, fits, framed_size
from protos.v1 import agent_internal_pb2


def _message(payload_bytes: int) -> agent_internal_pb2.MasterMessage:
    message = agent_internal_pb2.MasterMessage()
    message.error.message = "x" * payload_bytes
    return message


def test_options_apply_the_limit_both_ways() -> None:
    assert dict(GRPC_MESSAGE_OPTIONS) == {
        "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
        "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    }


def test_framed_size_is_the_size_in_a_batch() -> None:
    for n in (0, 100, 300, 70_000, 3_000_000):
        message = _message(n)
        batch = agent_internal_pb2.MasterMessages(messages=[message, message])
        assert batch.ByteSize() == 2 * framed_size(message)


def test_fits_is_exact_at_the_limit() -> None:
    message = _message(1000)
    assert fits(message, framed_size(message))
    assert not fits(message, framed_size(message) - 1)


def test_batches_keep_order_and_stay_under_the_limit() -> None:
    messages = [_message(n) for n in (10, 500, 20, 900, 5, 5, 1200, 40)]
    limit = 1300
    groups = list(batches(messages, limit))
    assert [m for group in groups for m in group] == messages
    for group in groups:
        assert agent_internal_pb2.MasterMessages(messages=group).ByteSize() <= limit
    assert len(groups) > 1
    assert list(batches([], limit)) == []


def test_a_message_over_the_limit_goes_alone() -> None:
    small, big = _message(10), _message(5000)
    assert list(batches([small, big, small], 1000)) == [[small], [big], [small]]
