"""`helpers.connect()`: the one entry point that gives a notebook its `lab` object.

The lab holds what differs between the two backends (how boto3 reaches AWS, how long waits
take: `lab.pace`), how resources are named and tagged, a ledger of what this run created,
and `url_for` for the things AWS reaches through DNS names (load balancers, APIs). The
service modules that create those declare how to reach them, in `URL_RESOLVERS` lists.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from localcloud import client as localcloud

from . import catalog, naming
from .pacing import BY_BACKEND, Pacing

BACKENDS = ("local", "aws")
_CLIENT_CONFIG = Config(
    retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=120
)
REPO_ROOT = Path(__file__).resolve().parents[1]
LEDGER_DIR = REPO_ROOT / "build" / "ledger"

# Builds a resource's base URL on one backend from its describe() dict and an optional stage.
UrlBuilder = Callable[["Lab", dict[str, Any], str | None], str]


@dataclass(frozen=True)
class UrlResolver:
    """How `lab.url_for` reaches one kind of resource: recognise it, build its URL per backend."""

    kind: str
    recognises: Callable[[dict[str, Any]], bool]  # by the fields of its describe() dict
    builders: Mapping[str, UrlBuilder]  # backend -> builder; a missing backend is refused


@dataclass
class Ledger:
    """An append-only record of what this run created (JSON lines under build/ledger/)."""

    path: Path
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, kind: str, identifier: str, pattern: str, action: str = "created") -> None:
        """Append one entry."""
        entry = {
            "time": time.time(),
            "kind": kind,
            "id": identifier,
            "pattern": pattern,
            "action": action,
        }
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as ledger:
                ledger.write(json.dumps(entry) + "\n")

    def entries(self) -> list[dict[str, Any]]:
        """Everything recorded so far, oldest first."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]


@dataclass
class Lab:
    """A notebook's handle on its backend: clients, pacing, naming, tags, ledger, URLs."""

    backend: str
    region: str
    run_id: str
    session: boto3.Session
    endpoint_url: str | None
    ledger: Ledger
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    # When this run of the notebook connected: metrics tables start here, not at earlier runs.
    started_at: float = field(default_factory=time.time, repr=False)

    @property
    def is_local(self) -> bool:
        """True on the local cloud."""
        return self.backend == "local"

    @property
    def pace(self) -> Pacing:
        """How long this backend's waits take and how often to poll them (helpers.pacing)."""
        return BY_BACKEND[self.backend]

    @functools.cached_property
    def account_id(self) -> str:
        """This backend's AWS account id, asked of STS once (for ARNs; never print it)."""
        return self.client("sts").get_caller_identity()["Account"]

    def client(self, service: str) -> Any:
        """A boto3 client for this backend (cached per service)."""
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, endpoint_url=self.endpoint_url, config=_CLIENT_CONFIG
            )
        return self._clients[service]

    def name(self, pattern: str, name: str, max_length: int = 64) -> str:
        """This run's name for a resource: `scd-<run_id>-<pattern>-<name>`."""
        return naming.resource_name(self.run_id, pattern, name, max_length)

    def tags(self, pattern: str) -> dict[str, str]:
        """The course tags for a resource of this pattern in this run."""
        return naming.course_tags(self.run_id, pattern)

    def url_for(self, resource: dict[str, Any], stage: str | None = None) -> str:
        """The base URL of a load balancer or API, on this backend."""
        resolver = _resolver_for(resource)
        build = resolver.builders.get(self.backend)
        if build is None:
            raise LookupError(f"no {self.backend} URL resolver registered for a {resolver.kind}")
        return build(self, resource, stage)


def connect(
    backend: str = "local",
    region: str = localcloud.DEFAULT_REGION,
    run_id: str = "dev",
    *,
    quiet: bool = False,
) -> Lab:
    """Connect to a backend ("local" starts the local cloud if needed) and return the lab."""
    if backend not in BACKENDS:
        raise ValueError(f"BACKEND must be one of {BACKENDS}, not {backend!r}")
    naming.check_run_id(run_id)
    ledger = Ledger(LEDGER_DIR / f"{backend}-{run_id}.jsonl")
    if backend == "aws":
        session = boto3.Session(region_name=region)
        lab = Lab(backend, region, run_id, session, None, ledger)
    else:
        info = localcloud.up(quiet=quiet)
        # The kernel's own clients (pymysql, requests, boto3) trust the local TLS endpoints
        # too; each bundle keeps the CAs trusted before, so HTTPS elsewhere still verifies.
        os.environ.update(localcloud.trust_environment())
        session = boto3.Session(
            aws_access_key_id=localcloud.DUMMY_ACCESS_KEY_ID,
            aws_secret_access_key=localcloud.DUMMY_SECRET_ACCESS_KEY,
            region_name=region,
        )
        lab = Lab(backend, region, run_id, session, info.endpoint, ledger)
    if not quiet:
        where = lab.endpoint_url or f"AWS ({region})"
        print(f"lab: backend={backend} region={region} run_id={run_id} -> {where}")
    return lab


def _resolver_for(resource: dict[str, Any]) -> UrlResolver:
    """The declared resolver that recognises this describe() dict (a load balancer, an API)."""
    for resolver in catalog.declared("URL_RESOLVERS"):
        if resolver.recognises(resource):
            return resolver
    raise ValueError("url_for takes a load balancer or API as returned by describe/get calls")


def local_endpoints(lab: Lab) -> dict[str, Any]:
    """The local cloud's listeners by service (load balancers, APIs, task ports)."""
    return localcloud.endpoints(lab.endpoint_url)
