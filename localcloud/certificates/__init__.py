"""The local cloud's own certificate authority: one private CA per state directory.

Every TLS endpoint the local cloud serves (RDS Proxy, next the cache and PostgreSQL) gets a
server certificate issued by this CA, so a client that trusts `ca_bundle(state_dir)` verifies
the endpoint with no change to its code (B hands the bundle to processes through
SSL_CERT_FILE, REQUESTS_CA_BUNDLE and AWS_CA_BUNDLE). The CA lives in
`<state>/certificates/` and is kept across daemon restarts; its key never leaves that
directory (mode 0600). The `cryptography` package makes the keys and certificates: it is the
library Python's own TLS stack is tested against, and trustme is a thin test-only layer on it.
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=30)  # a certificate this close to expiry is reissued
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")

__all__ = ["ca_bundle", "server_certificate"]


def ca_bundle(state_dir: Path) -> Path:
    """The CA certificate (PEM) of this state directory, created on first use."""
    folder = _folder(state_dir)
    with _locked(folder):
        return _ensure_ca(folder)[0]


def server_certificate(
    state_dir: Path, name: str, hostnames: list[str], ips: list[str]
) -> tuple[Path, Path]:
    """Certificate and key PEM files for a server, issued by the CA; reused while valid.

    A certificate is reused while it covers exactly these names and addresses, was issued by
    the current CA and is more than RENEW_BEFORE from its expiry; otherwise it is reissued.
    """
    folder = _folder(state_dir)
    safe = _SAFE_NAME.sub("_", name) or "server"
    cert_path, key_path = folder / f"{safe}.pem", folder / f"{safe}.key"
    with _locked(folder):
        ca_cert_path, ca_key_path = _ensure_ca(folder)
        ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
        wanted = _subject_names(hostnames, ips)
        if cert_path.exists() and key_path.exists() and _still_good(cert_path, ca_cert, wanted):
            return cert_path, key_path
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        common = (hostnames or ips or [name])[0]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common[:64])]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(wanted), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            # Names the CA by its key: a client that trusts the CAs of two state directories
            # (same subject name) then picks the right one instead of failing the signature.
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),  # type: ignore[union-attr]
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        _write(key_path, _key_pem(key), private=True)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        return cert_path, key_path


# ----- helpers ----------------------------------------------------------------------------


def _folder(state_dir: Path) -> Path:
    folder = Path(state_dir) / "certificates"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One writer at a time across processes (the daemon and a test may both ask)."""
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ensure_ca(folder: Path) -> tuple[Path, Path]:
    """The CA's certificate and key, made once per state directory (renewed near expiry)."""
    cert_path, key_path = folder / "ca.pem", folder / "ca.key"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if cert.not_valid_after_utc - RENEW_BEFORE > _now():
            return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Local cloud"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Local cloud CA"),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _subject_names(hostnames: list[str], ips: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    return names


def _still_good(cert_path: Path, ca_cert: x509.Certificate, wanted: list[x509.GeneralName]) -> bool:
    """Issued by this CA, for exactly these names, and not close to expiry."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    if cert.issuer != ca_cert.subject or cert.not_valid_after_utc - RENEW_BEFORE < _now():
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, x509.InvalidSignature, x509.ExtensionNotFound):
        return False
    return set(names) == set(wanted)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, private: bool = False) -> None:
    """Write atomically, so a reader never sees half a PEM file."""
    partial = path.with_suffix(path.suffix + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
