"""Redis: memory-only, as a cache; TLS with a private CA, as ElastiCache Serverless requires."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import HOST
from .common import EngineInstance, write_private
from .processes import command_line


def init(inst: EngineInstance) -> None:
    inst.data_dir.mkdir(mode=0o700, exist_ok=True)


def command(inst: EngineInstance) -> tuple[list[str], Callable[[], None]]:
    import redis  # the client library (absolute import), not this module

    # --set-proc-title no keeps argv (and so --dir) in /proc/<pid>/cmdline for kill_leftovers.
    template = "--bind {host} --save {empty} --appendonly no --dir {data} --daemonize no"
    template += " --set-proc-title no"
    if inst.tls:
        _make_tls(inst.dir, inst.owner)
        template += " --port 0 --tls-port {port} --tls-auth-clients no"
        template += " --tls-ca-cert-file {d}/ca.pem --tls-cert-file {d}/server.pem"
        template += " --tls-key-file {d}/server.key"
    else:
        template += " --port {port}"
    cmd = command_line(inst, "redis", template, empty="")
    ca = inst.dir / "ca.pem"

    def probe() -> None:
        tls = {"ssl": True, "ssl_ca_certs": str(ca)} if inst.tls else {}
        with redis.Redis(host=HOST, port=inst.port, socket_timeout=2, **tls) as client:
            client.ping()

    return cmd, probe


def _make_tls(directory: Path, owner: str) -> None:
    """A private CA and a server certificate for 127.0.0.1 and localhost, made once."""
    if (directory / "server.key").exists():
        return
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def issue(
        name: str, key: Any, issuer: x509.Name | None, signer: Any
    ) -> x509.CertificateBuilder:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer or subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
            )
        )

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    ca = (
        issue(f"localcloud CA for {owner}"[:64], ca_key, None, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ca_usage, critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    names = [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
    server = (
        issue("localhost", key, ca.subject, ca_key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(server.public_bytes(pem))
    private = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(directory / "server.key", private.decode())
