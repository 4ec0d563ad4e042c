"""The local cloud's CA: one per state directory, kept, and server certificates that verify."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path

import pytest

from localcloud.certificates import ca_bundle, server_certificate


def _handshake(state: Path, cert: Path, key: Path, server_name: str) -> str:
    """A real TLS handshake on loopback; the client trusts only the state's CA bundle."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(ca_bundle(state)))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        with (
            contextlib.suppress(ssl.SSLError, OSError),
            server_context.wrap_socket(connection, server_side=True) as tls,
        ):
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            client_context.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            return tls.recv(2).decode()
    finally:
        thread.join(timeout=5)
        listener.close()


def test_one_ca_per_state_directory_kept_across_calls(tmp_path: Path):
    first = ca_bundle(tmp_path).read_bytes()
    assert b"BEGIN CERTIFICATE" in first
    assert ca_bundle(tmp_path).read_bytes() == first  # created once, then reused
    assert ca_bundle(tmp_path / "other").read_bytes() != first
    assert (tmp_path / "certificates" / "ca.key").stat().st_mode & 0o077 == 0


def test_a_server_certificate_verifies_for_its_address_and_names(tmp_path: Path):
    cert, key = server_certificate(tmp_path, "proxy-one", ["proxy.local"], ["127.0.2.1"])
    assert _handshake(tmp_path, cert, key, "127.0.2.1") == "ok"
    assert _handshake(tmp_path, cert, key, "proxy.local") == "ok"
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tmp_path, cert, key, "127.0.2.2")  # not an address it was issued for
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tmp_path / "other", cert, key, "127.0.2.1")  # another state's CA


def test_a_server_certificate_is_reused_while_it_fits_and_reissued_when_not(tmp_path: Path):
    cert, _ = server_certificate(tmp_path, "proxy-one", [], ["127.0.2.1"])
    issued = cert.read_bytes()
    assert server_certificate(tmp_path, "proxy-one", [], ["127.0.2.1"])[0].read_bytes() == issued
    moved, _ = server_certificate(tmp_path, "proxy-one", [], ["127.0.2.5"])
    assert moved == cert and moved.read_bytes() != issued
