"""The trust bundle: machine CAs + the local CA, handed to Lambda workers and `localcloud env`."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_fixtures import ZipFunctions

import helpers
from localcloud import client
from localcloud.certificates import ca_bundle, server_certificate
from localcloud.trust import VARIABLES, system_ca_file, trust_bundle


def test_the_bundle_keeps_the_machine_cas_and_adds_the_local_ca(tmp_path):
    bundle = trust_bundle(tmp_path).read_bytes()
    system = system_ca_file()
    assert system is not None
    assert bundle.startswith(system.read_bytes().rstrip())  # HTTPS elsewhere still verifies
    assert bundle.endswith(ca_bundle(tmp_path).read_bytes())
    assert trust_bundle(tmp_path).read_bytes() == bundle  # stable: not rewritten each call
    assert set(client.trust_environment(tmp_path)) == set(VARIABLES)


@pytest.fixture
def tls_server(cloud_state: Path) -> Iterator[int]:
    """A TLS echo of one line on 127.0.0.1, with a certificate from the local cloud's CA."""
    cert, key = server_certificate(cloud_state, "pytest-trust", [], ["127.0.0.1"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)

    def serve() -> None:
        try:
            while True:
                connection, _ = listener.accept()
                try:
                    with context.wrap_socket(connection, server_side=True) as tls:
                        tls.sendall(b"hello over tls\n")
                except (ssl.SSLError, OSError):
                    pass  # a client that does not trust the CA ends the handshake
        except OSError:
            return  # the listener was closed

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


VERIFY = textwrap.dedent(
    """
    import os, socket, ssl

    def handler(event, context):
        context_ = ssl.create_default_context()  # no CA named: the default trust store
        with socket.create_connection(("127.0.0.1", event["port"]), timeout=10) as raw:
            with context_.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                line = tls.recv(100).decode()
        return {"line": line, "variables": {k: os.environ.get(k) for k in event["names"]}}
    """
)


def test_lambda_handler_verifies_a_local_tls_endpoint_unchanged(
    module_lab: helpers.Lab, zip_functions: ZipFunctions, tls_server: int, cloud_state: Path
):
    created = zip_functions.create({"app.py": VERIFY}, "app.handler", Timeout=30)
    answer = helpers.lambda_.invoke(
        module_lab, created["FunctionName"], {"port": tls_server, "names": list(VARIABLES)}
    )
    assert answer.function_error is None, answer.payload
    assert answer.payload["line"] == "hello over tls\n"
    bundle = str(trust_bundle(cloud_state))
    assert answer.payload["variables"] == dict.fromkeys(VARIABLES, bundle)


def test_without_the_bundle_the_same_client_is_refused(tls_server: int):
    code = textwrap.dedent(VERIFY) + (
        f"\nprint(handler({{'port': {tls_server}, 'names': []}}, None))"
    )
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in done.stderr


def test_env_command_exports_the_bundle_and_keeps_a_trust_already_set(cloud, cloud_state, tmp_path):
    def exports(**extra: str) -> str:
        env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
        command = [sys.executable, "-m", "localcloud", "env"]
        done = subprocess.run(
            command, env={**env, **extra}, capture_output=True, text=True, timeout=60
        )
        return done.stdout

    bundle = trust_bundle(cloud_state)
    plain = exports()
    for name in VARIABLES:
        assert f"export {name}={bundle}" in plain

    company = tmp_path / "company-ca.pem"
    company.write_bytes(ca_bundle(tmp_path).read_bytes())  # any CA a shell already trusts
    extended = trust_bundle(cloud_state, company)
    assert f"export SSL_CERT_FILE={extended}" in exports(SSL_CERT_FILE=str(company))
    assert extended.read_bytes().startswith(company.read_bytes().rstrip())
    assert extended.read_bytes().endswith(ca_bundle(cloud_state).read_bytes())
    again = exports(SSL_CERT_FILE=str(extended))  # a second connect keeps the company CA
    assert f"export SSL_CERT_FILE={extended}" in again
