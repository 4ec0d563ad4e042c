"""Event source mappings for DynamoDB streams: the API, AWS's defaults, ranges and states.

Create/Get/List/Update/DeleteEventSourceMapping as on AWS
(https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html): Create,
Update and Delete answer 202 with a transitional State (Creating, Updating, Enabling,
Disabling, Deleting) that settles a second later (Enabled, Disabled, or gone; under the AWS
timing profile, `localcloud/timing.py`, Creating and Deleting last AWS's times, scaled,
and a mapping Creating reads nothing yet). Defaults as
AWS echoes them: BatchSize 100, MaximumBatchingWindowInSeconds 0, MaximumRecordAgeInSeconds
-1, MaximumRetryAttempts -1, ParallelizationFactor 1, BisectBatchOnFunctionError false,
FunctionResponseTypes [], DestinationConfig {"OnFailure": {}}, TumblingWindowInSeconds 0.
Errors: an unknown stream 400
InvalidParameterValueException "Stream not found", the same stream and function twice 409
ResourceConflictException, a bad filter 400 "Invalid filter pattern definition.", an
unknown mapping 404 ResourceNotFoundException.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ...context import CloudContext
from ...dynamodbstreams import DynamoDBStreamsProvider
from ...dynamodbstreams.store import StreamStore
from ...protocols import ServiceError
from ...registry import RequestContext
from ...timing import Lifecycle
from . import destinations, filters
from .poller import Invoker, StreamPoller

DEFAULTS: dict[str, Any] = {
    "BatchSize": 100,
    "MaximumBatchingWindowInSeconds": 0,
    "MaximumRecordAgeInSeconds": -1,
    "MaximumRetryAttempts": -1,
    "ParallelizationFactor": 1,
    "TumblingWindowInSeconds": 0,
    "BisectBatchOnFunctionError": False,
    "FunctionResponseTypes": [],
    "DestinationConfig": {"OnFailure": {}},
}
UPDATABLE = (*DEFAULTS, "FilterCriteria")
SETTLED = {"Creating": None, "Enabling": "Enabled", "Disabling": "Disabled"}


@dataclass
class Mapping:
    """One mapping: its configuration as AWS reports it, its state and its poller."""

    config: dict[str, Any]
    enabled: bool
    state: str
    settles_at: float
    poller: StreamPoller | None = None
    last_result: str = "No records processed"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def settled_state(self) -> str:
        """The state now, applying a transition whose time has come."""
        transitional = self.state in ("Creating", "Updating", "Enabling", "Disabling")
        if transitional and time.monotonic() >= self.settles_at:
            self.state = "Enabled" if self.enabled else "Disabled"
        return self.state


class EventSourceMappings:
    """Every mapping of the local cloud, and the pollers of the enabled ones."""

    def __init__(self, cloud: CloudContext, invoker: Invoker) -> None:
        self.cloud, self.invoker = cloud, invoker
        self.transition = float(os.environ.get("LOCALCLOUD_ESM_TRANSITION_SECONDS", 1.0))
        self.retry_seconds = float(os.environ.get("LOCALCLOUD_ESM_RETRY_SECONDS", 0.5))
        self._mappings: dict[str, Mapping] = {}
        self._lifecycle = Lifecycle(cloud.timing, "event source mapping")  # AWS timing profile
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._settle_loop, name="esm-states", daemon=True).start()

    @property
    def store(self) -> StreamStore:
        """The streams the DynamoDB Streams provider keeps."""
        return self.cloud.providers.get(DynamoDBStreamsProvider).store

    # ----- the API ----------------------------------------------------------------------

    def create(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """A new mapping, Creating; its poller starts once it is Enabled."""
        source = params.get("EventSourceArn") or ""
        stream = self.store.get(source)
        if stream is None:
            raise ServiceError("InvalidParameterValueException", f"Stream not found: {source}")
        function = self.invoker.function_spec(params["FunctionName"], None, context)
        position = params.get("StartingPosition")
        if position not in ("TRIM_HORIZON", "LATEST"):
            raise ServiceError(
                "InvalidParameterValueException",
                f"Unsupported starting position for arn type: {source}"
                if position
                else "StartingPosition is required for the event source.",
            )
        function_arn = _unqualified(function.arn)
        config = {**DEFAULTS, **{k: params[k] for k in UPDATABLE if params.get(k) is not None}}
        config["DestinationConfig"] = _destination(config["DestinationConfig"])
        _check(config)
        with self._lock:
            for other in self._mappings.values():
                same = other.config["EventSourceArn"] == source
                if same and other.config["FunctionArn"] == function_arn:
                    raise ServiceError(
                        "ResourceConflictException",
                        f'The event source arn (" {source} ") and function (" '
                        f'{function.name} ") provided mapping already exists. Please update '
                        f"or delete the existing mapping with UUID {other.config['UUID']}",
                        409,
                    )
        mapping_id = str(uuid.uuid4())
        config.update(
            UUID=mapping_id,
            StartingPosition=position,
            EventSourceArn=source,
            FunctionArn=function_arn,
            EventSourceMappingArn=(
                f"arn:aws:lambda:{context.region}:{context.account_id}:event-source-mapping:"
                f"{mapping_id}"
            ),
            LastModified=time.time(),
            _region=context.region,
            _account=context.account_id,
        )
        start = (
            self.store.trim_horizon(stream)
            if position == "TRIM_HORIZON"
            else self.store.last_sequence(stream)
        )
        mapping = Mapping(
            config=config,
            enabled=params.get("Enabled", True) is not False,
            state="Creating",
            settles_at=time.monotonic() + max(self.transition, self._lifecycle.create_s),
        )
        mapping.poller = StreamPoller(
            self.cloud,
            self.store,
            self.invoker,
            lambda: mapping.config,
            lambda result: setattr(mapping, "last_result", result),
            start,
            self.retry_seconds,
        )
        mapping.poller.start()
        with self._lock:
            self._mappings[mapping_id] = mapping
        return self._describe(mapping, "User action")

    def get(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """One mapping by UUID."""
        return self._describe(self._find(params["UUID"]))

    def list(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Mappings of a stream and/or a function, a page at a time."""
        function_arn = None
        if params.get("FunctionName"):
            spec = self.invoker.function_spec(params["FunctionName"], None, context)
            function_arn = _unqualified(spec.arn)
        with self._lock:
            found = [
                m
                for m in self._mappings.values()
                if m.config["_region"] == context.region
                and params.get("EventSourceArn") in (None, m.config["EventSourceArn"])
                and function_arn in (None, m.config["FunctionArn"])
            ]
        found.sort(key=lambda m: m.config["UUID"])
        start = int(params.get("Marker") or 0)
        size = params.get("MaxItems") or 100
        page = found[start : start + size]
        answer: dict[str, Any] = {"EventSourceMappings": [self._describe(m) for m in page]}
        if start + size < len(found):
            answer["NextMarker"] = str(start + size)
        return answer

    def update(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Change settings or enable/disable; 202 with Updating, Enabling or Disabling."""
        mapping = self._find(params["UUID"])
        if mapping.settled_state() in ("Creating", "Updating", "Deleting"):
            raise ServiceError(
                "ResourceInUseException",
                "Cannot update the event source mapping because it is in use.",
            )
        changes = {k: params[k] for k in UPDATABLE if params.get(k) is not None}
        if "DestinationConfig" in changes:
            changes["DestinationConfig"] = _destination(changes["DestinationConfig"])
        if params.get("FunctionName"):
            spec = self.invoker.function_spec(params["FunctionName"], None, context)
            changes["FunctionArn"] = _unqualified(spec.arn)
        config = {**mapping.config, **changes}
        _check(config)
        lanes_change = config["ParallelizationFactor"] != mapping.config["ParallelizationFactor"]
        config["LastModified"] = time.time()
        with mapping.lock:
            mapping.config = config
            state = "Updating"
            if "Enabled" in params and params["Enabled"] != mapping.enabled:
                mapping.enabled = bool(params["Enabled"])
                state = "Enabling" if mapping.enabled else "Disabling"
                if not mapping.enabled and mapping.poller is not None:
                    mapping.poller.active.clear()  # Disabling: no new batch starts
            mapping.state = state
            mapping.settles_at = time.monotonic() + self.transition
        if lanes_change and mapping.poller is not None:
            mapping.poller.stop()
            mapping.poller.start()
        return self._describe(mapping, "User action")

    def delete(self, params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        """Deleting at once; the poller stops and the mapping is gone a moment later."""
        mapping = self._find(params["UUID"])
        mapping.state = "Deleting"
        mapping.settles_at = time.monotonic() + max(self.transition, self._lifecycle.delete_s)
        if mapping.poller is not None:
            mapping.poller.active.clear()
        return self._describe(mapping)

    # ----- lifecycle --------------------------------------------------------------------

    def clear(self) -> None:
        """Stop and forget every mapping."""
        with self._lock:
            mappings = list(self._mappings.values())
            self._mappings.clear()
        for mapping in mappings:
            if mapping.poller is not None:
                mapping.poller.stop()

    def close(self) -> None:
        self._closed.set()
        self.clear()

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"event source mappings": len(self._mappings)}

    def _settle_loop(self) -> None:
        """Apply state transitions: start or pause pollers, remove deleted mappings."""
        while not self._closed.wait(0.1):
            with self._lock:
                mappings = list(self._mappings.values())
            for mapping in mappings:
                if mapping.state == "Deleting":
                    if time.monotonic() >= mapping.settles_at:
                        with self._lock:
                            self._mappings.pop(mapping.config["UUID"], None)
                        if mapping.poller is not None:
                            mapping.poller.stop()
                    continue
                state = mapping.settled_state()
                if mapping.poller is not None:
                    if state == "Enabled":
                        mapping.poller.active.set()
                    elif state == "Disabled":
                        mapping.poller.active.clear()

    def _find(self, mapping_id: str) -> Mapping:
        with self._lock:
            mapping = self._mappings.get(mapping_id)
        if mapping is None:
            raise ServiceError(
                "ResourceNotFoundException", "The resource you requested does not exist.", 404
            )
        return mapping

    def _describe(self, mapping: Mapping, reason: str = "User action") -> dict[str, Any]:
        """The mapping as the API shows it (internal keys start with `_`)."""
        shown = {k: v for k, v in mapping.config.items() if not k.startswith("_")}
        shown.update(
            State=mapping.settled_state(),
            StateTransitionReason=reason,
            LastProcessingResult=mapping.last_result,
        )
        return shown


def _destination(config: dict[str, Any]) -> dict[str, Any]:
    """DestinationConfig as AWS echoes it, checked."""
    destinations.check(config)
    return {"OnFailure": dict(config.get("OnFailure") or {})}


def _check(config: dict[str, Any]) -> None:
    """AWS's rules beyond the model's ranges."""
    age = config["MaximumRecordAgeInSeconds"]
    if 0 <= age < 60:
        raise ServiceError(
            "InvalidParameterValueException",
            "The minimum valid value for MaximumRecordAgeInSeconds is 60s. "
            "Use -1 for infinite record age.",
        )
    config["_patterns"] = filters.parse(config.get("FilterCriteria"))


def _unqualified(arn: str) -> str:
    """A function ARN without its version or alias."""
    return arn.rsplit(":", 1)[0] if arn.count(":") > 6 else arn
