"""gRPC message bounds shared by the node's server and every client."""

from __future__ import annotations

from wlx.node.protocol.codec import MAX_ENVELOPE_BYTES

MAX_MESSAGE_BYTES = MAX_ENVELOPE_BYTES + 1024 * 1024
"""Largest gRPC message either side sends or accepts."""


def channel_options() -> list[tuple[str, int]]:
    """Channel options shared by the server and its clients: bounded messages."""
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
