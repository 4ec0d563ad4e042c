"""The trust bundle handed to the processes the local cloud serves: system CAs + its own CA.

Handler code verifies the local cloud's TLS endpoints (RDS Proxy, next the cache and
PostgreSQL) with no change when its process has these standard variables:

- SSL_CERT_FILE: OpenSSL's default CA file, so Python's `ssl.create_default_context()` (and
  pymysql with `ssl_verify_cert=True`, redis-py, urllib, aiohttp) trusts what it names;
- REQUESTS_CA_BUNDLE: what `requests` verifies with instead of certifi's copy;
- AWS_CA_BUNDLE: what botocore verifies AWS endpoints with.

Each of them *replaces* the trust store it applies to, so the bundle is the machine's CAs
followed by the local CA: HTTPS to real AWS, PyPI or anywhere else still verifies in a
notebook kernel or a worker that has the variables.
"""

from __future__ import annotations

import hashlib
import os
import ssl
from collections.abc import Mapping
from pathlib import Path

from .certificates import ca_bundle

BUNDLE_NAME = "trust-bundle.pem"
VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "AWS_CA_BUNDLE")


def system_ca_file() -> Path | None:
    """The machine's CA bundle: OpenSSL's default file, else certifi's copy, else None."""
    default = ssl.get_default_verify_paths()
    for candidate in (default.openssl_cafile, default.cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    try:
        import certifi
    except ImportError:
        return None
    return Path(certifi.where())


def trust_bundle(state_dir: Path, base: Path | None = None) -> Path:
    """A bundle of `base` (default: the machine's CAs) followed by the local CA, kept fresh.

    `<state>/certificates/trust-bundle.pem` for the machine's CAs; another base (a bundle a
    process already trusts through SSL_CERT_FILE, say a company's) gets a file of its own.
    """
    local_ca = ca_bundle(state_dir)
    system = system_ca_file()
    base = base or system
    name = BUNDLE_NAME
    if base is not None and (system is None or base.resolve() != system.resolve()):
        name = f"trust-bundle-{hashlib.sha256(str(base).encode()).hexdigest()[:12]}.pem"
    parts = [base.read_bytes().rstrip() + b"\n"] if base else []
    wanted = b"".join([*parts, local_ca.read_bytes()])
    bundle = local_ca.parent / name
    if not bundle.exists() or bundle.read_bytes() != wanted:
        partial = bundle.with_name(f"{name}.{os.getpid()}.partial")
        partial.write_bytes(wanted)
        os.replace(partial, bundle)  # a process reading it never sees half a file
    if name != BUNDLE_NAME and base is not None:
        bundle.with_suffix(".origin").write_text(str(base))  # to rebuild it from its base
    return bundle


def trust_environment(state_dir: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables that make a process trust the local cloud's TLS endpoints.

    With `environ` (a process's own variables), a variable that already names a CA file
    keeps trusting that file: the value becomes that file plus the local CA.
    """
    folder = ca_bundle(state_dir).parent
    found: dict[str, str] = {}
    for variable in VARIABLES:
        current = (environ or {}).get(variable)
        base = Path(current) if current and Path(current).is_file() else None
        if base is not None and base.parent == folder:  # one of ours: rebuild from its base
            origin = base.with_suffix(".origin")
            base = Path(origin.read_text()) if origin.is_file() else None
        found[variable] = str(trust_bundle(state_dir, base))
    return found
