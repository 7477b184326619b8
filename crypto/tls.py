"""X.509 material for mutual TLS: node certificates and officer credentials.

docs/protocol.md §1.3.  gRPC's TLS does not take Ed25519 certificates, so a
node's TLS key is ECDSA P-256 and its self-signed certificate is bound to
the node's identity by the identity card, which the Ed25519 identity key
signs.  Peers pin that exact certificate.  Officer, auditor and operator
credentials are client certificates issued by a node's own credential CA
(another P-256 key), which that node alone trusts.

Pure: keys derive from bytes the caller supplies; times are passed in.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wlx.crypto.encoding import lp
from wlx.crypto.errors import MalformedError, VerificationError
from wlx.crypto.keys import Rng, system_rng

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def generate_key(rng: Rng = system_rng) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key derived from 48 bytes of ``rng`` (bias below 2**-128)."""
    scalar = int.from_bytes(rng(48), "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def key_to_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (the file holding it must be mode 0600)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def key_from_pem(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """Load a P-256 private key.

    Raises:
        MalformedError: not a PEM P-256 private key.
    """
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise MalformedError("not a PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise MalformedError("not a P-256 private key")
    return key


def load_cert(pem: bytes) -> x509.Certificate:
    """Parse one PEM certificate.

    Raises:
        MalformedError: not a PEM certificate.
    """
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise MalformedError("not a PEM certificate") from None


def _public_key(cert: x509.Certificate) -> object:
    """The certificate's public key.

    Raises:
        MalformedError: a key the library cannot load (an invalid point, an
            unknown algorithm).
    """
    try:
        return cert.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise MalformedError("the certificate's public key is invalid") from None


def load_node_cert(pem: bytes) -> x509.Certificate:
    """Parse a node certificate as an identity card carries it (MUST-1.2-4):
    exactly one certificate, in the PEM form of RFC 7468 that
    ``-----BEGIN CERTIFICATE-----`` / 64-character base64 lines /
    ``-----END CERTIFICATE-----`` and one final newline make, with nothing
    before or after it (no chain, no text), of an ECDSA P-256 key.

    Raises:
        MalformedError: anything else.
    """
    cert = load_cert(pem)
    if cert.public_bytes(serialization.Encoding.PEM) != pem:
        raise MalformedError("not exactly one PEM certificate (a chain, or extra text)")
    public = _public_key(cert)
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
        raise MalformedError("not a P-256 certificate")
    return cert


def fingerprint(pem: bytes) -> str:
    """Lower-case hex SHA-256 of a certificate's DER encoding."""
    der = load_cert(pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def dns_names(pem: bytes) -> list[str]:
    """The DNS names of a certificate's subject alternative names ([] if none).

    Raises:
        MalformedError: not a PEM certificate, or an unreadable extension.
    """
    cert = load_cert(pem)
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    except ValueError:
        raise MalformedError("unreadable certificate extensions") from None
    return [str(n) for n in ext.value.get_values_for_type(x509.DNSName)]


TLS_POP_CONTEXT = b"wlx/v1 tls-key-possession\x00"


def possession_message(node_id: str, identity_key: bytes) -> bytes:
    """What a node's TLS key signs to bind itself to the node's identity (§1.2):
    ``"wlx/v1 tls-key-possession" || 0x00 || lp(node_id) || lp(identity key)``."""
    return TLS_POP_CONTEXT + lp(node_id) + lp(identity_key)


def sign_possession(key: ec.EllipticCurvePrivateKey, node_id: str, identity_key: bytes) -> bytes:
    """Deterministic ECDSA P-256/SHA-256 (RFC 6979, DER) of ``possession_message``."""
    return key.sign(
        possession_message(node_id, identity_key),
        ec.ECDSA(hashes.SHA256(), deterministic_signing=True),
    )


def verify_possession(cert_pem: bytes, node_id: str, identity_key: bytes, sig: bytes) -> None:
    """Check that the key of ``cert_pem`` signed ``possession_message``.

    Raises:
        VerificationError: it did not.
        MalformedError: not a P-256 certificate.
    """
    public = _public_key(load_cert(cert_pem))
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
        raise MalformedError("not a P-256 certificate")
    try:
        public.verify(sig, possession_message(node_id, identity_key), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise VerificationError("the TLS key did not sign for this identity") from None


def node_dns_name(node_id: str) -> str:
    """The DNS name in a node certificate, checked by clients: ``<id>.node.wlx``."""
    return f"{node_id.lower()}.node.wlx"


def service_dns_name(node_id: str) -> str:
    """The DNS name officers', auditors' and operators' tools ask for (by SNI):
    ``clients.<id>.node.wlx``.  The node answers it with its service
    certificate, which its credential CA issues (``service_certificate``)."""
    return f"clients.{node_dns_name(node_id)}"


def _time(ts: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC)


def _serial(rng: Rng) -> int:
    return int.from_bytes(rng(16), "big") >> 1 or 1


def node_certificate(
    key: ec.EllipticCurvePrivateKey,
    node_id: str,
    *,
    not_before: int,
    not_after: int,
    rng: Rng = system_rng,
) -> bytes:
    """A self-signed leaf certificate for a node's TLS key (PEM).

    The subject is unique per certificate (node id and a random tag), since
    TLS libraries find trust anchors by subject; the DNS name is the node's.
    Usable as both server and client certificate.
    """
    tag = rng(4).hex()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"wlx node {node_id} {tag}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial(rng))
        .not_valid_before(_time(not_before))
        .not_valid_after(_time(not_after))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(node_dns_name(node_id))]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            False,
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def ca_certificate(
    key: ec.EllipticCurvePrivateKey,
    node_id: str,
    not_before: int,
    not_after: int,
    *,
    rng: Rng = system_rng,
) -> bytes:
    """A node's credential CA certificate (PEM): issues client certificates only."""
    tag = rng(4).hex()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"wlx credentials {node_id} {tag}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial(rng))
        .not_valid_before(_time(not_before))
        .not_valid_after(_time(not_after))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def service_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert_pem: bytes,
    server_key: ec.EllipticCurvePublicKey,
    node_id: str,
    *,
    not_before: int,
    not_after: int,
    rng: Rng = system_rng,
) -> bytes:
    """A server certificate for the node's current TLS key, issued by its
    credential CA (PEM), for ``service_dns_name(node_id)`` only.

    Credentials pin the CA, which a key rotation does not change, so they
    keep working when the TLS key is replaced: the node issues a new service
    certificate for its new key.  Server authentication only (it opens no
    node as a client).
    """
    ca_cert = load_cert(ca_cert_pem)
    tag = rng(4).hex()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"wlx service {node_id} {tag}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(server_key)
        .serial_number(_serial(rng))
        .not_valid_before(_time(not_before))
        .not_valid_after(_time(not_after))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(service_dns_name(node_id))]), False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class IssuedCredential:
    """A client certificate and its key, as issued."""

    serial: str
    """Lower-case hex serial number: the credential's id."""
    cert_pem: bytes
    key_pem: bytes


def issue_client_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert_pem: bytes,
    *,
    name: str,
    role: str,
    not_before: int,
    not_after: int,
    rng: Rng = system_rng,
) -> IssuedCredential:
    """Issue a client certificate (CN = name, OU = role) under a credential CA."""
    ca_cert = load_cert(ca_cert_pem)
    key = generate_key(rng)
    serial = _serial(rng)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(_time(not_before))
        .not_valid_after(_time(not_after))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    return IssuedCredential(
        serial=format(serial, "x"),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key_to_pem(key),
    )


def check_issued_by(cert_pem: bytes, ca_cert_pem: bytes) -> str:
    """Check that a certificate was issued by a CA; returns its hex serial.

    Raises:
        MalformedError: not certificates.
        VerificationError: not issued (signed) by that CA.
    """
    cert, ca = load_cert(cert_pem), load_cert(ca_cert_pem)
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise VerificationError("certificate not issued by this node's credential CA") from None
    return format(cert.serial_number, "x")
