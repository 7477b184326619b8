"""Connections from this node to its peers."""

from __future__ import annotations

import grpc

from wlx.node.protocol.codec import MAX_ENVELOPE_BYTES

MAX_MESSAGE_BYTES = MAX_ENVELOPE_BYTES + 1024 * 1024
"""Largest gRPC message either side sends or accepts."""


def channel_options() -> list[tuple[str, int]]:
    """Channel options shared by the server and its clients: bounded messages."""
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]


def peer_channel(address: str) -> grpc.Channel:
    """A channel to a peer node at ``address``."""
    return grpc.insecure_channel(address, options=channel_options())
