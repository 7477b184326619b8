"""The gRPC client of ``Federation.Evaluate`` (docs/protocol.md §15.4)."""

from __future__ import annotations

import threading

import grpc

from wlx.node.core.errors import Exhausted, PermissionDenied
from wlx.node.core.node import Node
from wlx.node.incoming.online import Transport
from wlx.node.protocol import codec
from wlx.node.protocol.messages import SignedRequest
from wlx.node.rpc.status_codes import from_rpc_error
from wlx.node.rpc.transport import peer_channel
from wlx.v1 import federation_pb2, federation_pb2_grpc

EVALUATE_TIMEOUT = 5.0


def evaluate_sender(node: Node) -> Transport:
    """How ``node`` sends a signed Evaluate request to an origin (mutual TLS).

    Keeps one channel per origin (address and card), so that a lookup does
    not pay a TLS handshake; a channel that failed is dropped and made anew.
    """
    channels: dict[str, tuple[tuple[str, bytes], grpc.Channel]] = {}
    lock = threading.Lock()

    def channel_to(origin: str) -> grpc.Channel:
        card = node.trusted(origin)
        with node.store.read() as tx:
            peer = tx.get_peer(origin)
        if card is None or peer is None:
            raise PermissionDenied(f"{origin} is not a trusted peer")
        ident = (peer.address, card.raw)
        with lock:
            cached = channels.get(origin)
            if cached is not None and cached[0] == ident:
                return cached[1]
            if cached is not None:
                cached[1].close()
            channel = peer_channel(node, card, peer.address)
            channels[origin] = (ident, channel)
            return channel

    def drop(origin: str) -> None:
        with lock:
            cached = channels.pop(origin, None)
        if cached is not None:
            cached[1].close()

    def send(origin: str, signed: SignedRequest) -> SignedRequest:
        request = federation_pb2.EvaluateRequest(
            request=codec.encode_signed(
                signed.payload, signed.signature, signed.signer, signed.recipient, signed.purpose
            )
        )
        stub = federation_pb2_grpc.FederationStub(channel_to(origin))
        try:
            response = stub.Evaluate(request, timeout=EVALUATE_TIMEOUT)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise Exhausted(f"{origin}: {exc.details()}") from None
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                drop(origin)
            raise from_rpc_error(exc, f"peer {origin}") from None
        return codec.decode_signed(response)

    return send
