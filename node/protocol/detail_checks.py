"""Who a detail request and its answer must name (§11.2, §11.3).  Pure.

A detail request is signed by the requesting node for the origin; the
signature says who sent it, so the parties the request names must be that
signer and this node.  The answer is signed by the origin for the requester
and names the request it answers by its digest: an answer of another origin,
for another node or for another request is refused.
"""

from __future__ import annotations

import hmac

from wlx.node.core.errors import Rejection, RejectReason
from wlx.node.protocol.messages import DetailAnswer, DetailParams


def check_request_parties(params: DetailParams, *, signer: str, me: str) -> None:
    """A detail request must name its signer as the requester and this node
    (``me``) as the origin (§11.2).

    Raises:
        Rejection: ``WRONG_SENDER`` if the requester is not the signer, else
            ``WRONG_RECIPIENT`` if the origin is another node.
    """
    if params.requester != signer or params.origin != me:
        raise Rejection(
            RejectReason.WRONG_SENDER
            if params.requester != signer
            else RejectReason.WRONG_RECIPIENT,
            "detail request names other parties",
        )


def check_answer(reply: DetailAnswer, *, origin: str, me: str, request_digest: bytes) -> None:
    """A detail answer must come from the ``origin`` asked, be for this node
    (``me``) and answer exactly the request of ``request_digest`` (§11.3).

    Raises:
        Rejection: ``WRONG_RECIPIENT`` if it names other parties, else
            ``MALFORMED`` if it answers another request.
    """
    if reply.origin != origin or reply.recipient != me:
        raise Rejection(RejectReason.WRONG_RECIPIENT, "detail answer names other parties")
    if not hmac.compare_digest(reply.request_digest, request_digest):
        raise Rejection(RejectReason.MALFORMED, "detail answer is for another request")
