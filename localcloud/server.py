"""The daemon side of the local cloud: the `LocalCloud` object and the HTTP server loop.

`python -m localcloud serve` runs this in the foreground; `up` starts it detached.
The daemon owns moto (control plane), the course's providers (data plane), the engine
manager (private MariaDB, PostgreSQL and Redis processes) and the edge in front of them.

The control API (`/_localcloud/<call>`) must not be reachable from a web page the student
visits: the edge refuses foreign Host, Origin and Sec-Fetch-Site values, and the calls that
change something (reset, shutdown) take only a POST carrying `X-LocalCloud-Token`, the
token in the daemon's info file (`daemon.json`, mode 0600). A custom header makes any
cross-site request need a CORS preflight, which the control API never grants.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .config import HOST, code_version, daemon_info_path, state_dir
from .context import CloudContext
from .ec2 import VpcRoutes
from .edge import Edge
from .engines import EngineManager
from .inventory import tagged_resources
from .motogateway import MotoGateway
from .registry import Registry
from .services import provider_classes

log = logging.getLogger("localcloud")
VERSION = "0.1"
TOKEN_HEADER = "X-LocalCloud-Token"
# Calls that change something; the others only read and answer GET as well.
MUTATING_CALLS = frozenset({"reset", "shutdown"})


class LocalCloud:
    """Everything the daemon runs: moto, providers, engines and the edge in front of them."""

    def __init__(self, state: Path, port: int) -> None:
        self.port = port
        self.started_at = time.time()
        # boto3 in notebooks, Lambda workers and ECS tasks uses this as AWS_ENDPOINT_URL.
        self.endpoint_url = f"http://{HOST}:{port}"
        self.context = CloudContext(
            state_dir=state,
            endpoint_url=self.endpoint_url,
            moto=MotoGateway(),
            engines=EngineManager(state / "engines"),
        )
        for cls in provider_classes():
            self.context.providers.add(cls(self.context))
        self.registry = Registry(self.context.providers.all())
        self.token = secrets.token_urlsafe(32)
        routes = VpcRoutes(self.context.moto).hold  # VPC functions reach AWS only via a route
        self.edge = Edge(self.registry, self.context.moto, self.control, self.guard, routes)
        self._stop = threading.Event()

    def control(self, name: str, body: bytes) -> tuple[int, Any]:
        """The daemon's control API: health, status, endpoints, reset, shutdown."""
        if name == "health":
            return 200, {
                "status": "ok",
                "pid": os.getpid(),
                "port": self.port,
                "started_at": self.started_at,
                "version": VERSION,
            }
        if name == "status":
            return 200, self.status()
        if name == "endpoints":
            return 200, _by_service((p.service, p.endpoints()) for p in self.registry.providers())
        if name == "reset":
            self.reset()
            return 200, {"reset": True}
        if name == "shutdown":
            self._stop.set()
            return 200, {"stopping": True}
        return 404, {"error": f"unknown control call {name!r}"}

    def guard(self, name: str, method: str, headers: Mapping[str, str]) -> tuple[int, Any] | None:
        """Refuse a control call that changes something unless it is a POST with the token."""
        if name not in MUTATING_CALLS:
            return None if method in ("GET", "HEAD", "POST") else _refused(405, "GET or POST")
        if method != "POST":
            return _refused(405, f"{name} takes POST")
        given = headers.get(TOKEN_HEADER) or ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return _refused(403, f"{name} needs the {TOKEN_HEADER} header from daemon.json")
        return None

    def status(self) -> dict[str, Any]:
        """Services, engines and uptime, for `status`."""
        return {
            "endpoint": self.endpoint_url,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started_at, 1),
            "providers": _by_service((p.service, p.status()) for p in self.registry.providers()),
            "engines": self.context.engines.list(),
            "resources": tagged_resources(self.context.moto),
        }

    def reset(self) -> None:
        """Back to empty: providers forget state, engines are wiped, moto is reset."""
        for provider in self.registry.providers():
            provider.reset()
        self.context.publisher.clear()
        self.context.metrics.reset()
        self.context.engines.wipe()
        self.context.moto.reset()
        log.info("state reset")

    def close(self) -> None:
        """Stop providers' work and every engine process this daemon started."""
        for provider in self.registry.providers():
            try:
                provider.shutdown()
            except Exception:
                log.exception("provider %s failed to shut down", provider.service)
        self.context.publisher.close()
        self.context.logs.close()
        self.context.engines.stop_all()

    def wait_for_stop(self) -> None:
        """Block until a shutdown was requested (control call or signal)."""
        while not self._stop.wait(0.5):  # a timed wait lets signal handlers run promptly
            pass

    def request_stop(self) -> None:
        """Ask the serving loop to end."""
        self._stop.set()


def serve(port: int) -> None:
    """Run the local cloud in the foreground until SIGTERM, SIGINT or a shutdown call."""
    from .http.wsgi import WsgiServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    state = state_dir()
    server = WsgiServer(HOST, port)  # werkzeug's server cost more than most calls behind it
    cloud = LocalCloud(state, server.server_port)
    server.app = cloud.edge
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: cloud.request_stop())
    thread = threading.Thread(target=server.serve_forever, name="edge", daemon=True)
    thread.start()
    info = {
        "pid": os.getpid(),
        "port": server.server_port,
        "endpoint": cloud.endpoint_url,
        "started_at": cloud.started_at,
        "code_version": code_version(),
        "timing": cloud.context.timing.describe(),
        "state_dir": str(state),
        "token": cloud.token,
    }
    _write_atomically(daemon_info_path(state), json.dumps(info))
    log.info("local cloud listening on %s (pid %d)", cloud.endpoint_url, os.getpid())
    try:
        cloud.wait_for_stop()
    finally:
        log.info("stopping")
        server.shutdown()
        cloud.close()
        daemon_info_path(state).unlink(missing_ok=True)
        log.info("stopped")


def _by_service(items: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per service, what its providers report, merged (RDS has two providers)."""
    merged: dict[str, dict[str, Any]] = {}
    for service, values in items:
        merged.setdefault(service, {}).update(values)
    return merged


def _refused(status: int, message: str) -> tuple[int, Any]:
    """A control API refusal as the edge sends it."""
    return status, {"error": message}


def _write_atomically(path: Path, text: str) -> None:
    """Write a file readable by its owner only, so that readers never see half of it."""
    temporary = path.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)
    # Created 0600 (not chmod-ed later): the token must never be readable by others.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    temporary.replace(path)
