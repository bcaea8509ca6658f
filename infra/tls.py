"""The local certificate authority and the front's certificate, made at setup for local use.

A real deployment sets ``BROKER_TLS_CERT_FILE`` (chain and key in one PEM, HAProxy's format)
and ``BROKER_TLS_CA_FILE``; then nothing is made here. Locally, a CA of the project's own signs
a certificate for loopback, so clients verify the front instead of turning verification off.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.settings import Settings

log = logging.getLogger(__name__)

CA_VALID_DAYS = 3650
CERT_VALID_DAYS = 397  # the longest validity browsers accept for a server certificate
# A certificate closer than this to its end is made again at the next setup.
RENEW_BEFORE_DAYS = 30


def ensure_certificates(settings: Settings) -> Path:
    """Make the local CA and the front's certificate unless configured or still valid."""
    cert_path = settings.front_cert_path
    if settings.tls_cert_file is not None:
        if not cert_path.is_file():
            raise FileNotFoundError(f"BROKER_TLS_CERT_FILE names no file: {cert_path}")
        return cert_path
    if cert_path.is_file() and _still_valid(cert_path):
        return cert_path
    settings.tls_dir.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _make_ca(settings)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign_server_cert(settings, key, ca_key, ca_cert)
    pem = (
        cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    _write_private(cert_path, pem)
    log.info("made the front's certificate %s (local CA %s)", cert_path, settings.ca_cert_path)
    return cert_path


def _still_valid(path: Path) -> bool:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return left > datetime.timedelta(days=RENEW_BEFORE_DAYS)


def _make_ca(settings: Settings) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The local CA: reused while its key and certificate are on disk, else made anew."""
    key_path = settings.tls_dir / "ca.key"
    ca_path = settings.ca_cert_path
    if key_path.is_file() and ca_path.is_file() and _still_valid(ca_path):
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key, x509.load_pem_x509_certificate(ca_path.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Broker local development CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    ca_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _sign_server_cert(
    settings: Settings,
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
) -> x509.Certificate:
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    hosts = {settings.front_public_host, "127.0.0.1", "::1", *settings.tls_cert_names}
    for host in sorted(hosts - {"localhost"}):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner may read (it holds a private key)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
