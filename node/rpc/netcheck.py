"""Why a connection to a node failed: nothing listening, timed out, the
server is not the node pinned, or it refused our certificate.

gRPC reports all of these as one status (UNAVAILABLE).  After such a
failure, ``why_unreachable`` retries the connection step by step with the
same address, pinned certificate and client key, and names the step that
failed, so the user is told what to fix.  Diagnostic only: it sends nothing
but a TLS handshake, and never decides anything about trust.
"""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

PROBE_TIMEOUT = 3.0


@dataclass(frozen=True)
class Endpoint:
    """How a client connects to a node."""

    address: str
    """HOST:PORT."""
    server_name: str
    """The DNS name the server's certificate must carry."""
    pinned: bytes = b""
    """PEM trust anchor(s) for the server (empty: plaintext)."""
    key: bytes = b""
    """PEM of the client key presented."""
    cert: bytes = b""
    """PEM of the client certificate presented."""
    refused_hint: str = "is this node trusted there, with its current card?"
    """What to check when the server refuses our certificate."""


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def why_unreachable(endpoint: Endpoint, *, timeout: float = PROBE_TIMEOUT) -> str:
    """One phrase naming why ``endpoint`` cannot be used (never raises)."""
    try:
        host, port = _split(endpoint.address)
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return "nothing is listening there"
    except TimeoutError:
        return f"timed out connecting (no answer in {timeout:.0f} s)"
    except socket.gaierror:
        return "unknown host"
    except (OSError, ValueError) as exc:
        return f"cannot connect ({getattr(exc, 'strerror', None) or type(exc).__name__})"
    with sock:
        if not endpoint.pinned:
            return "it accepts connections but did not answer the call (is it a wlx node?)"
        return _why_tls(sock, endpoint)


def _context(endpoint: Endpoint) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=endpoint.pinned.decode("ascii"))
    context.set_alpn_protocols(["h2"])
    if endpoint.key and endpoint.cert:
        with tempfile.TemporaryDirectory() as tmp:  # ssl loads key pairs from files only
            path = Path(tmp) / "client.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(endpoint.key + b"\n" + endpoint.cert)
            context.load_cert_chain(path)
    return context


def _why_tls(sock: socket.socket, endpoint: Endpoint) -> str:
    try:
        context = _context(endpoint)
    except (ssl.SSLError, ValueError, OSError):
        return "TLS could not be set up with the pinned certificate and key"
    try:
        with context.wrap_socket(sock, server_hostname=endpoint.server_name) as tls:
            try:
                data = tls.recv(1)  # TLS 1.3: a refused client certificate shows here
            except TimeoutError:
                return "TLS is up but the server stalled (overloaded or not a wlx node?)"
            if not data:
                return f"it refused our TLS certificate ({endpoint.refused_hint})"
            return "it accepts our TLS certificate, but the call failed (try again)"
    except ssl.SSLCertVerificationError:
        return (
            "its TLS certificate is not the one trusted for it: not trusted (wrong address "
            "or node, or its keys changed)"
        )
    except ssl.SSLError:
        return f"it refused our TLS certificate ({endpoint.refused_hint})"
    except TimeoutError:
        return "it accepted the connection but stalled in the TLS handshake"
    except OSError as exc:
        return f"the connection broke during TLS ({exc.strerror or type(exc).__name__})"
