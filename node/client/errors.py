"""The client's exception tree (``wlx.client``): whose fault, and what to do.

::

    ClientError          every error the client raises on purpose
    ├── InvalidRequest   the query, MRZ, entry or purpose is unusable: fix the input
    ├── CredentialError  the credential file cannot be used (missing, unreadable, wrong file)
    ├── AccessDenied     the node refused this credential (revoked, expired, wrong role)
    ├── NotFound         the node does not know what was named (a ref without a recent hit)
    ├── NodeUnavailable  the node could not be reached, refused the TLS handshake,
    │                    timed out, or is over its rate limits: retry later
    └── NodeError        the node failed (its own error; see its log)

Each is also a subclass of the node's matching error class
(``wlx.node.core.errors``), so code catching those keeps working.  Messages never
contain a name, a date of birth or a document number.
"""

from __future__ import annotations

from wlx.node.core import errors as node_errors


class ClientError(node_errors.WlxError):
    """Base class of every error ``wlx.client`` raises on purpose."""


class InvalidRequest(ClientError, node_errors.UserError):
    """The request is unusable (no usable identifier, a bad MRZ, no purpose...)."""


class CredentialError(ClientError, node_errors.UserError):
    """The credential file cannot be used."""


class AccessDenied(ClientError, node_errors.PermissionDenied):
    """The node refused the credential or its role for this call."""


class NotFound(ClientError, node_errors.NotFound):
    """The node does not know the thing named."""


class NodeUnavailable(ClientError, node_errors.Unavailable):
    """Unreachable, TLS refused, timed out, or over its limits: try again later."""


class NodeError(ClientError, node_errors.PeerError):
    """The node failed to answer (its own fault)."""


def translate(error: node_errors.WlxError) -> ClientError:
    """The client error for a node error (same message)."""
    if isinstance(error, ClientError):
        return error
    message = str(error)
    kind: type[ClientError]
    if isinstance(error, node_errors.NotFound):
        kind = NotFound
    elif isinstance(error, node_errors.PermissionDenied | node_errors.Unauthenticated):
        kind = AccessDenied
    elif isinstance(error, node_errors.UserError):
        kind = InvalidRequest
    elif isinstance(error, node_errors.Unavailable):
        kind = NodeUnavailable
    else:
        kind = NodeError
    return kind(message)
