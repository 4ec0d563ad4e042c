"""Lambda functions for the course: deploy (zip folder or ECR image), invoke, read REPORT lines.

`ensure_function` is get-or-create and converges: a re-run with the same code and settings
changes nothing, changed code or settings are updated in the order AWS allows (code, wait,
configuration, wait). `invoke` returns function errors as data so a notebook can assert on
them; service errors raise as botocore raises them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from .. import cleanup, logs
from ..costs import Price
from ..lab import Lab
from ..waiting import wait_for

KIND = "lambda function"
MEMORY_MB = (128, 10240)
TIMEOUT_S = (1, 900)
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
MAX_DIRECT_ZIP_BYTES = 50 * 1024 * 1024  # larger zips must go through S3; use an image instead
REPORT_COLUMNS = [*logs.REPORT_FIELDS, "timestamp"]

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold: no mtime leaks in
_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".git", ".pytest_cache"}
_SKIP_NAMES = {".DS_Store"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class Invocation:
    """What one Invoke call returned, as a notebook wants to read it."""

    status_code: int
    payload: Any  # parsed JSON when the body is JSON, else the raw text (None if empty)
    function_error: str | None  # None, or "Unhandled" (AWS) when the function failed
    log_tail: str | None  # last 4 KB of the invocation's log, when tail_logs=True
    executed_version: str | None
    client_ms: float  # measured around the call, so it includes the network round trip

    @property
    def ok(self) -> bool:
        """True when the service accepted the call and the function did not fail."""
        return self.function_error is None and 200 <= self.status_code < 300


def ensure_function(
    lab: Lab,
    pattern: str,
    name: str,
    *,
    role_arn: str,
    image_uri: str | None = None,
    zip_dir: Path | None = None,
    handler: str | None = None,
    runtime: str = "python3.12",
    memory_mb: int = 512,
    timeout_s: int = 30,
    environment: dict[str, str] | None = None,
    description: str = "",
    subnet_ids: Sequence[str] = (),
    security_group_ids: Sequence[str] = (),
) -> dict[str, Any]:
    """Get or create a function from an image or a zip folder; update what differs.

    With `subnet_ids` and `security_group_ids` the function is attached to that VPC: it can
    reach private resources (an RDS Proxy) and, without a NAT gateway, nothing on the internet.
    The role then needs `vpc_access_statements` (helpers.iam) to create network interfaces.
    """
    zip_bytes = _validate(
        role_arn, image_uri, zip_dir, handler, runtime, memory_mb, timeout_s, environment
    )
    if bool(subnet_ids) != bool(security_group_ids):
        raise ValueError("a VPC function needs both subnet_ids and security_group_ids")
    function_name = lab.name(pattern, name, 64)
    client = lab.client("lambda")
    desired: dict[str, Any] = {  # in update_function_configuration's terms
        "Role": role_arn,
        "MemorySize": memory_mb,
        "Timeout": timeout_s,
        "Description": description,
        "Environment": {"Variables": dict(environment or {})},
        "VpcConfig": _vpc_config(subnet_ids, security_group_ids),
    }
    if image_uri is None:  # an image brings its own runtime and handler
        desired.update(Handler=handler, Runtime=runtime)
    estimate = 30 if image_uri else 5  # AWS optimises an image before the function is Active
    if subnet_ids:
        estimate += 60  # and creates the function's network interfaces in the VPC
    try:
        current = client.get_function(FunctionName=function_name)
    except client.exceptions.ResourceNotFoundException:
        code = {"ImageUri": image_uri} if image_uri else {"ZipFile": zip_bytes}
        package = {"PackageType": "Image"} if image_uri else {"PackageType": "Zip"}
        _create(
            lab,
            FunctionName=function_name,
            Code=code,
            Tags=lab.tags(pattern),
            **package,
            **_create_arguments(desired),
        )
        lab.ledger.record(KIND, function_name, pattern)
        return _wait_ready(client, function_name, "creating", estimate)

    config = current["Configuration"]
    if not _settled(config):  # a previous update may still be running: AWS would refuse ours
        config = _wait_ready(client, function_name, "previous update", estimate, strict=False)
    wanted_package = "Image" if image_uri else "Zip"
    if config.get("PackageType", "Zip") != wanted_package:
        raise ValueError(
            f"function {function_name} is a {config.get('PackageType')} function and Lambda "
            f"cannot turn it into a {wanted_package} function: tear it down "
            f"(helpers.cleanup.teardown(lab, pattern={pattern!r})) or use another name."
        )
    if image_uri:
        code_changed = current.get("Code", {}).get("ImageUri") != image_uri
        code_update: dict[str, Any] = {"ImageUri": image_uri}
    else:
        code_changed = config.get("CodeSha256") != code_sha256(zip_bytes or b"")
        code_update = {"ZipFile": zip_bytes}
    if code_changed:
        client.update_function_code(FunctionName=function_name, **code_update)
        lab.ledger.record(KIND, function_name, pattern, "updated code")
        config = _wait_ready(client, function_name, "updating code", estimate)
    changes = _configuration_changes(config, desired)
    if changes:
        # Only after the code update finished: otherwise AWS answers ResourceConflictException.
        client.update_function_configuration(FunctionName=function_name, **changes)
        lab.ledger.record(KIND, function_name, pattern, "updated configuration")
        config = _wait_ready(client, function_name, "updating configuration", 5)
    return config


def invoke(
    lab: Lab,
    function_name: str,
    payload: dict[str, Any] | None = None,
    *,
    invocation_type: str = "RequestResponse",
    tail_logs: bool = False,
) -> Invocation:
    """Invoke a function; a function error comes back in `function_error`, it is not raised."""
    if invocation_type not in INVOCATION_TYPES:
        raise ValueError(
            f"invocation_type must be one of {INVOCATION_TYPES}, not {invocation_type!r}"
        )
    arguments: dict[str, Any] = {
        "FunctionName": function_name,
        "InvocationType": invocation_type,
        "LogType": "Tail" if tail_logs else "None",
    }
    if payload is not None:  # no body means {} to Lambda
        arguments["Payload"] = json.dumps(payload).encode()
    client = lab.client("lambda")
    started = time.perf_counter()
    response = client.invoke(**arguments)
    body = response["Payload"].read() if "Payload" in response else b""
    client_ms = (time.perf_counter() - started) * 1000
    log_result = response.get("LogResult")
    return Invocation(
        status_code=response["StatusCode"],
        payload=_decode_payload(body),
        function_error=response.get("FunctionError"),
        log_tail=base64.b64decode(log_result).decode("utf-8", "replace") if log_result else None,
        executed_version=response.get("ExecutedVersion"),
        client_ms=client_ms,
    )


def report_lines(lab: Lab, function_name: str, *, since_minutes: int = 30) -> pd.DataFrame:
    """The function's REPORT lines (one per invocation) as a DataFrame, oldest first."""
    if function_name.startswith("arn:"):  # arn:aws:lambda:<region>:<account>:function:<name>
        function_name = function_name.split(":")[6]
    client = lab.client("logs")
    start = int((time.time() - since_minutes * 60) * 1000)
    rows: list[dict[str, Any]] = []
    try:
        pages = client.get_paginator("filter_log_events").paginate(
            logGroupName=logs.lambda_group(function_name), filterPattern="REPORT", startTime=start
        )
        for page in pages:
            for event in page["events"]:
                row = logs.parse_report_line(event["message"])
                if row is not None:
                    row["timestamp"] = pd.Timestamp(event["timestamp"], unit="ms", tz="UTC")
                    rows.append(row)
    except client.exceptions.ResourceNotFoundException:
        pass  # no invocation has logged yet
    frame = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def cold_and_warm(
    lab: Lab, function_name: str, payload: dict[str, Any], *, cold_starts: int, warm_invokes: int
) -> pd.DataFrame:
    """Client-side latency of cold starts (forced) and warm invocations, one row per call.

    A configuration change makes Lambda use fresh execution environments, so each round
    changes an environment variable, invokes once (cold), then invokes repeatedly (warm).
    """
    client = lab.client("lambda")
    variables = (
        client.get_function_configuration(FunctionName=function_name)
        .get("Environment", {})
        .get("Variables", {})
    )
    rows = []
    for round_number in range(cold_starts):
        client.update_function_configuration(
            FunctionName=function_name,
            Environment={"Variables": {**variables, "COURSE_ROUND": str(round_number)}},
        )
        _wait_ready(client, function_name, "configuration update", estimate=5)
        for call in range(1 + warm_invokes // cold_starts):
            result = invoke(lab, function_name, payload)
            rows.append(
                {
                    "start": "cold" if call == 0 else "warm",
                    "client_ms": result.client_ms,
                    "function_error": result.function_error,
                }
            )
    return pd.DataFrame(rows)


def burst(
    lab: Lab, function_name: str, payload: dict[str, Any], *, seconds: float, callers: int
) -> pd.DataFrame:
    """Invoke from `callers` threads for `seconds`: one row per call (time, client_ms, error)."""
    from concurrent.futures import ThreadPoolExecutor

    deadline = time.monotonic() + seconds

    def caller(_: int) -> list[dict[str, Any]]:
        client = lab.session.client("lambda", endpoint_url=lab.endpoint_url)
        rows = []
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = client.invoke(FunctionName=function_name, Payload=json.dumps(payload))
            response["Payload"].read()
            rows.append(
                {
                    "time": pd.Timestamp.now(tz="UTC"),
                    "client_ms": (time.perf_counter() - started) * 1000,
                    "function_error": response.get("FunctionError"),
                }
            )
        return rows

    with ThreadPoolExecutor(callers) as pool:
        rows = [row for rows in pool.map(caller, range(callers)) for row in rows]
    return pd.DataFrame(rows).sort_values("time", ignore_index=True)


def package_zip(zip_dir: Path) -> bytes:
    """Zip a directory deterministically: same files, same bytes, same CodeSha256."""
    root = Path(zip_dir)
    files = sorted(
        (path.relative_to(root).as_posix(), path)
        for path in root.rglob("*")
        if _packaged(root, path)
    )
    if not files:
        raise ValueError(f"zip_dir {root} has no files to deploy")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, path in files:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, on every OS, so the mode bits below are read back
            mode = 0o755 if path.stat().st_mode & 0o111 else 0o644  # keep only "executable?"
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def code_sha256(zip_bytes: bytes) -> str:
    """Lambda's CodeSha256 of a zip: base64 of the SHA-256 digest."""
    return base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()


def _packaged(root: Path, path: Path) -> bool:
    """Files that belong in the zip: no caches, no editor or OS litter."""
    relative = path.relative_to(root)
    return (
        path.is_file()
        and not _SKIP_DIRS.intersection(relative.parts[:-1])
        and path.name not in _SKIP_NAMES
        and not path.name.endswith(_SKIP_SUFFIXES)
    )


def _validate(
    role_arn: str,
    image_uri: str | None,
    zip_dir: Path | None,
    handler: str | None,
    runtime: str,
    memory_mb: int,
    timeout_s: int,
    environment: dict[str, str] | None,
) -> bytes | None:
    """Check the arguments before any AWS call; return the packaged zip for zip functions."""
    if not isinstance(role_arn, str) or not role_arn.startswith("arn:"):
        raise ValueError(
            f"role_arn must be a role ARN string such as role['Arn'], not {role_arn!r}"
        )
    if (image_uri is None) == (zip_dir is None):
        raise ValueError("give exactly one of image_uri (an ECR image) or zip_dir (a code folder)")
    check_range("memory_mb", memory_mb, MEMORY_MB, "MB")
    check_range("timeout_s", timeout_s, TIMEOUT_S, "seconds")
    bad = {
        k: v
        for k, v in (environment or {}).items()
        if not isinstance(k, str) or not isinstance(v, str)
    }
    if bad:
        raise ValueError(f"environment keys and values must be strings; convert these: {bad}")
    if image_uri is not None:
        if handler is not None:
            raise ValueError(
                "handler is for zip functions: an image names its handler in the Dockerfile's CMD"
            )
        return None
    zip_dir = Path(zip_dir)  # type: ignore[arg-type]
    if not zip_dir.is_dir():
        raise ValueError(f"zip_dir {zip_dir} is not a directory")
    if not handler or "." not in handler.strip("."):
        raise ValueError(
            "a zip function needs handler='<module>.<function>', e.g. 'app.handler' for "
            "def handler(event, context) in app.py"
        )
    if runtime.startswith("python"):
        module = handler.rpartition(".")[0].replace(".", "/")
        if not ((zip_dir / f"{module}.py").is_file() or (zip_dir / module).is_dir()):
            raise ValueError(f"handler {handler!r} needs {module}.py in {zip_dir}")
    zip_bytes = package_zip(zip_dir)
    if len(zip_bytes) > MAX_DIRECT_ZIP_BYTES:
        raise ValueError(
            f"{zip_dir} zips to {len(zip_bytes) / 2**20:.0f} MB; Lambda takes at most 50 MB "
            "directly: deploy it as a container image (image_uri) instead"
        )
    return zip_bytes


def check_range(field: str, value: int, bounds: tuple[int, int], unit: str) -> None:
    """Raise ValueError naming the field and its allowed range."""
    if not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"{field} must be between {bounds[0]} and {bounds[1]} {unit}, not {value}")


def _create_arguments(desired: dict[str, Any]) -> dict[str, Any]:
    """create_function's settings: leave out an empty environment or VPC rather than send {}."""
    arguments = dict(desired)
    if not arguments["Environment"]["Variables"]:
        del arguments["Environment"]
    if not arguments["VpcConfig"]["SubnetIds"]:
        del arguments["VpcConfig"]
    return arguments


def _vpc_config(subnet_ids: Iterable[str], security_group_ids: Iterable[str]) -> dict[str, Any]:
    """A VpcConfig in a stable order, so a re-run compares equal to what Lambda reports."""
    return {"SubnetIds": sorted(subnet_ids), "SecurityGroupIds": sorted(security_group_ids)}


def _configuration_changes(config: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """Only the settings that differ from the deployed function (empty when nothing does)."""
    current = {key: config.get(key) for key in desired}
    current["Description"] = config.get("Description", "")  # AWS omits empty ones
    current["Environment"] = {"Variables": config.get("Environment", {}).get("Variables", {})}
    vpc = config.get("VpcConfig") or {}
    current["VpcConfig"] = _vpc_config(vpc.get("SubnetIds", []), vpc.get("SecurityGroupIds", []))
    return {key: value for key, value in desired.items() if current[key] != value}


def _create(lab: Lab, **arguments: Any) -> dict[str, Any]:
    """create_function, retried while a new role propagates (on AWS ~10 s before Lambda sees it)."""
    client = lab.client("lambda")
    role_arn = arguments["Role"]
    checked_role = False

    def attempt() -> dict[str, Any] | None:
        nonlocal checked_role
        try:
            return client.create_function(**arguments)
        except ClientError as error:
            details = error.response.get("Error", {})
            if "cannot be assumed" not in details.get("Message", ""):
                raise  # only InvalidParameterValueException "...cannot be assumed by Lambda."
            if not checked_role:  # a missing role never propagates: say so instead of waiting
                _check_role_exists(lab, role_arn)
                checked_role = True
            return None

    return wait_for(
        attempt,
        what=f"IAM role reaching Lambda ({role_arn.rsplit('/', 1)[-1]})",
        timeout=90,
        estimate=10,
        interval=3,
        hint="Check that the role trusts lambda.amazonaws.com (helpers.iam.ensure_role).",
    )


def _check_role_exists(lab: Lab, role_arn: str) -> None:
    """Raise a clear error if the role does not exist at all."""
    iam = lab.client("iam")
    role_name = role_arn.rsplit("/", 1)[-1]
    try:
        iam.get_role(RoleName=role_name)
    except iam.exceptions.NoSuchEntityException:
        raise ValueError(
            f"role {role_name} does not exist: create it first with helpers.iam.ensure_role"
        ) from None
    except ClientError:
        pass  # e.g. no iam:GetRole permission: keep waiting, the role may still be propagating


def _settled(config: dict[str, Any]) -> bool:
    """True when the function accepts a new update (not Pending, no update in progress)."""
    return config.get("State") != "Pending" and config.get("LastUpdateStatus") != "InProgress"


def _wait_ready(
    lab_client: Any, function_name: str, step: str, estimate: float, *, strict: bool = True
) -> dict[str, Any]:
    """Wait until the function is settled; with strict, a Failed state or update raises."""

    def check() -> dict[str, Any] | None:
        config = lab_client.get_function_configuration(FunctionName=function_name)
        config.pop("ResponseMetadata", None)
        for field in ("State", "LastUpdateStatus"):
            if strict and config.get(field) == "Failed":
                raise RuntimeError(
                    f"function {function_name}: {field} Failed: "
                    f"{config.get(field + 'ReasonCode')}: {config.get(field + 'Reason')}"
                )
        return config if _settled(config) else None

    return wait_for(
        check,
        what=f"function {function_name} ({step})",
        timeout=600,
        estimate=estimate,
        hint="Look at the function's State and LastUpdateStatus in get_function_configuration.",
    )


def _decode_payload(body: bytes) -> Any:
    """JSON when the body parses, else the text; None for an empty body (Event, DryRun)."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def _find(lab: Lab) -> Iterable[cleanup.Resource]:
    """Every course function (all runs); names say run and pattern."""
    return cleanup.named(KIND, lab, "lambda.list_functions", "Functions", "FunctionName")


def _delete(lab: Lab, resource: cleanup.Resource) -> None:
    """Delete a function (its log group is a separate kind, deleted after it).

    A VPC function is detached from its VPC first (VpcConfig with no subnets and no security
    groups): Lambda then starts releasing its network interfaces at once. Deleting it while
    attached leaves them behind for 20 to 60 minutes, and they block deleting its security
    groups. The security groups' own teardown waits for the interfaces to go.
    """
    client = lab.client("lambda")
    config = client.get_function_configuration(FunctionName=resource.identifier)
    if (config.get("VpcConfig") or {}).get("SubnetIds"):
        if not _settled(config):
            _wait_ready(client, resource.identifier, "previous update", 30, strict=False)
        client.update_function_configuration(
            FunctionName=resource.identifier, VpcConfig={"SubnetIds": [], "SecurityGroupIds": []}
        )
        _wait_ready(client, resource.identifier, "detaching from the VPC", 60, strict=False)
    client.delete_function(FunctionName=resource.identifier)


# The HTTP and REST APIs and event source mappings invoke the function: they go first.
RESOURCE_KINDS = [
    cleanup.ResourceKind(
        KIND, _find, _delete, after=("http api", "rest api", "event source mapping")
    ),
]

# AWS list prices (us-east-1) of this service, for `helpers.costs.estimate`.
PRICES = {
    "lambda_million_requests": Price(0.20, "1M requests", "free tier: 1M requests/month"),
    "lambda_gb_second": Price(0.0000166667, "GB-second", "x86; free tier: 400,000 GB-s/month"),
}
