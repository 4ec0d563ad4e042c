"""What both API Gateway providers keep per served API: listener, cached configuration, stages.

HTTP APIs (this package) and REST APIs (`localcloud.apigateway`) each serve an API on its own
loopback listener, read its configuration from moto once and cache it until a write changes
it, and, under the AWS timing profile, serve a new stage only some seconds after it was made.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..context import CloudContext
from ..http.framing import Limits
from ..http.messages import HttpRequest, HttpResponse, WholeMessages
from ..http.server import HttpListener
from ..registry import RequestContext
from ..timing import API_STAGE_READY_S

IDLE_TIMEOUT = 120.0  # an idle client connection is closed after this many seconds
SERVED_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

Config = TypeVar("Config")


@dataclass(frozen=True)
class ServedApi:
    """A served API: the region and account it lives in, and its listener."""

    region: str
    account_id: str
    listener: HttpListener

    def context(self) -> RequestContext:
        """The request context to read the API's configuration with."""
        return RequestContext(region=self.region, account_id=self.account_id)


class ApiListeners:
    """One listener on 127.0.0.1 per API, started at its creation and stopped at its deletion."""

    def __init__(
        self, prefix: str, limits: Limits, error: Callable[[int, str], HttpResponse]
    ) -> None:
        self.prefix = prefix  # of the listener threads' names
        self.limits = limits
        self.error = error  # the flavour's answer to a request the listener refuses
        self._apis: dict[str, ServedApi] = {}
        self._lock = threading.Lock()

    def start(
        self, api_id: str, handler: Callable[[HttpRequest], HttpResponse], context: RequestContext
    ) -> str:
        """Start serving the API with `handler`; its base URL."""
        serve = WholeMessages(handler, self.error, SERVED_METHODS)
        listener = HttpListener(
            f"{self.prefix}-{api_id}", serve, IDLE_TIMEOUT, self.limits, self.error
        )
        listener.start()
        with self._lock:
            self._apis[api_id] = ServedApi(context.region, context.account_id, listener)
        return listener.url

    def stop(self, api_id: str) -> None:
        """Stop the API's listener (nothing if it has none)."""
        with self._lock:
            api = self._apis.pop(api_id, None)
        if api is not None:
            api.listener.stop()

    def stop_all(self) -> None:
        """Stop every listener, side by side: each stop waits for its server loop's next poll."""
        with self._lock:
            apis, self._apis = list(self._apis.values()), {}
        stoppers = [threading.Thread(target=api.listener.stop) for api in apis]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()

    def get(self, api_id: str) -> ServedApi | None:
        """The served API, or None once it is deleted."""
        with self._lock:
            return self._apis.get(api_id)

    def urls(self) -> dict[str, str]:
        """API id -> base URL of its listener."""
        with self._lock:
            return {api_id: api.listener.url for api_id, api in self._apis.items()}


class ConfigCache(Generic[Config]):
    """An API's configuration as read from moto, kept until a write operation changes it.

    A read races with writes: `lookup` hands out a generation, and `store` keeps the value only
    if nothing changed since, so a read that straddles a change is never cached.
    """

    def __init__(self) -> None:
        self._values: dict[str, Config] = {}
        self._generation = itertools.count()
        self._current = next(self._generation)
        self._lock = threading.Lock()

    def lookup(self, api_id: str) -> tuple[Config | None, int]:
        """(the cached configuration or None, the generation to `store` a fresh read with)."""
        with self._lock:
            return self._values.get(api_id), self._current

    def store(self, api_id: str, value: Config, generation: int) -> None:
        """Keep a fresh read, unless something changed while it was being read."""
        with self._lock:
            if generation == self._current:
                self._values[api_id] = value

    def invalidate(self, api_id: str) -> None:
        """Drop the API's configuration: it changed (or the API is gone)."""
        with self._lock:
            self._values.pop(api_id, None)
            self._current = next(self._generation)

    def clear(self) -> None:
        """Drop every API's configuration."""
        with self._lock:
            self._values.clear()
            self._current = next(self._generation)


class StageClock:
    """When stages were made: under the AWS timing profile a new one is served only later.

    A stage just deployed on AWS answers as if it did not exist for its first seconds
    (`localcloud/timing.py`); with the instant profile nothing is noted and all are ready.
    """

    def __init__(self, cloud: CloudContext) -> None:
        self.cloud = cloud
        self._created: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def note(self, api_id: str, stage: str) -> bool:
        """Remember that the stage was just made; True if it will be served only later."""
        if not self.cloud.timing.aws:
            return False
        with self._lock:
            self._created[(api_id, stage)] = time.monotonic()
        return True

    def ready(self, api_id: str, stage: str) -> bool:
        """False while a new stage is still being deployed."""
        with self._lock:
            created = self._created.get((api_id, stage))
        if created is None:
            return True
        return time.monotonic() - created >= self.cloud.timing.delay(API_STAGE_READY_S)

    def clear(self) -> None:
        """Forget every stage."""
        with self._lock:
            self._created.clear()
