"""What a local worker needs to run a function, read from moto's Lambda and ECR backends.

moto keeps each function's configuration (created through the ordinary Lambda API); this
module turns it into a `FunctionSpec`: the command line, working directory and environment
of the worker process, plus a fingerprint that changes whenever code or configuration
changes, so that the pool starts fresh workers after an update as Lambda does.

- Zip functions: the zip is extracted once per CodeSha256 under the state directory and
  runs on the local cloud's own Python interpreter (whatever the function's Runtime says).
- Image functions: the ImageUri is resolved through the local ECR to a digest, and the
  digest to a process-runtime image of the local image store (`localcloud.images`, filled
  by `helpers.images.build_and_push`): its files, Python environment, ENV, ENTRYPOINT and
  CMD. ImageConfig overrides are honoured. Only images whose entrypoint starts the Python
  runtime interface client are runnable: AWS base images (`/lambda-entrypoint.sh`) and
  `python -m awslambdaric` entrypoints.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from ..images import load_local_image
from ..motogateway import MotoGateway
from ..protocols import ServiceError
from ..trust import trust_environment

DEFAULT_MAX_RETRY_ATTEMPTS = 2  # Event invokes: two more tries after a function error
DEFAULT_MAX_EVENT_AGE_S = 6 * 3600
_IMAGE_URI = re.compile(
    r"^(?P<registry>[^/]+)/(?P<repository>[^:@]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
_extract_lock = threading.Lock()
# By function: the spec, and the gateway and its generation when the spec was last read.
_specs: dict[tuple[str, str, str, str | None], tuple[FunctionSpec, MotoGateway, int]] = {}


@dataclass(frozen=True)
class FunctionSpec:
    """One function version as the worker pool needs it."""

    name: str
    arn: str
    version: str
    memory_mb: int
    timeout_s: int
    runtime_label: str  # for AWS_EXECUTION_ENV, e.g. "python3.12"
    handler: str
    command: list[str]
    cwd: str
    task_root: str
    environment: dict[str, str]  # image ENV plus the function's variables
    reserved_concurrency: int | None
    max_retry_attempts: int
    max_event_age_s: int
    fingerprint: str = field(compare=False)
    task_root_on_aws: str = "/var/task"  # what tracebacks show instead of task_root


def function_not_found(
    region: str, account_id: str, name: str, qualifier: str | None
) -> ServiceError:
    """The 404 Lambda answers for an unknown function (with the qualifier it assumed)."""
    arn = f"arn:aws:lambda:{region}:{account_id}:function:{name}:{qualifier or '$LATEST'}"
    return ServiceError("ResourceNotFoundException", f"Function not found: {arn}", 404)


def resolve(
    moto: MotoGateway,
    state_dir: Path,
    region: str,
    account_id: str,
    name: str,
    qualifier: str | None,
) -> FunctionSpec:
    """The spec of a function from moto's backends; ServiceError if it cannot run.

    Re-read from moto only after a call that may have changed moto (`MotoGateway.generation`):
    reading and fingerprinting the configuration was a tenth of a warm invoke's time.
    """
    key = (region, account_id, name, qualifier)
    generation = moto.generation  # read first: a change made while resolving re-reads next time
    cached = _specs.get(key)
    if cached is not None and cached[1] is moto and cached[2] == generation:
        return cached[0]
    short = name.split(":function:")[-1].split(":")[0]
    with moto.backend("lambda", account_id, region, read_only=True) as functions:
        try:
            function = functions.get_function(name, qualifier)
        except Exception as error:  # moto raises its own UnknownFunctionException
            if "not found" in str(error).lower() or type(error).__name__.startswith("Unknown"):
                raise function_not_found(region, account_id, short, qualifier) from error
            raise
        configuration = function.get_configuration()
        code_bytes = getattr(function, "code_bytes", b"")
        image_uri = function.code.get("ImageUri") if isinstance(function.code, dict) else None
        image_config = function.image_config
        invoke_config = function.event_invoke_config[0] if function.event_invoke_config else None
        event_settings = invoke_config.response() if invoke_config is not None else {}
        reserved = function.reserved_concurrency
    # Reserved concurrency is not in the configuration, but a change to it must be seen.
    fingerprint = hashlib.sha256(
        json.dumps([configuration, reserved], sort_keys=True, default=str).encode()
    ).hexdigest()
    if cached is not None and cached[0].fingerprint == fingerprint:
        _specs[key] = (cached[0], moto, generation)
        return cached[0]
    environment = dict(configuration.get("Environment", {}).get("Variables", {}))
    handler = configuration.get("Handler") or ""
    task_root_on_aws = "/var/task"
    if image_uri:
        command, cwd, (task_root, task_root_on_aws), image_env, handler = _image_command(
            moto, region, account_id, image_uri, image_config
        )
        environment = {**image_env, **environment}
    else:
        task_root = str(_extracted_zip(state_dir, configuration["CodeSha256"], code_bytes))
        command, cwd = [sys.executable, "-m", "awslambdaric", handler], task_root
    # Handler code verifies the local cloud's TLS endpoints with the default trust store.
    environment = {**trust_environment(state_dir), **environment}
    spec = FunctionSpec(
        name=configuration["FunctionName"],
        arn=configuration["FunctionArn"],
        version=configuration.get("Version", "$LATEST"),
        memory_mb=int(configuration.get("MemorySize", 128)),
        timeout_s=int(configuration.get("Timeout", 3)),
        runtime_label=configuration.get("Runtime") or "python3.12",
        handler=handler,
        command=command,
        cwd=cwd,
        task_root=task_root,
        task_root_on_aws=task_root_on_aws,
        environment=environment,
        reserved_concurrency=None if reserved is None else int(reserved),  # 0: always throttle
        max_retry_attempts=int(
            event_settings.get("MaximumRetryAttempts", DEFAULT_MAX_RETRY_ATTEMPTS)
        ),
        max_event_age_s=int(
            event_settings.get("MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE_S)
        ),
        fingerprint=fingerprint,
    )
    _specs[key] = (spec, moto, generation)
    return spec


def function_exists(moto: MotoGateway, arn: str) -> bool:
    """False once the function of this ARN was deleted (True when unsure: workers stay)."""
    parts = arn.split(":")
    if len(parts) < 7:
        return True
    region, account_id = parts[3], parts[4]
    try:
        with moto.backend("lambda", account_id, region, read_only=True) as functions:
            functions.get_function(arn)
    except Exception as error:  # moto raises its own UnknownFunctionException
        return not ("not found" in str(error).lower() or type(error).__name__.startswith("Unknown"))
    return True


def _extracted_zip(state_dir: Path, code_sha: str, code_bytes: bytes) -> Path:
    """The zip's contents on disk, extracted once per CodeSha256."""
    digest = hashlib.sha256(code_sha.encode()).hexdigest()[:32]
    target = state_dir / "lambda" / "code" / digest
    with _extract_lock:
        if not target.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(dir=target.parent))
            with zipfile.ZipFile(BytesIO(code_bytes)) as archive:
                archive.extractall(scratch)
            scratch.replace(target)
    return target


def _image_command(
    moto: MotoGateway, region: str, account_id: str, image_uri: str, image_config: Any
) -> tuple[list[str], str, tuple[str, str], dict[str, str], str]:
    """Command, working directory, task root (here, in the image), environment and handler."""
    digest = image_digest(moto, region, account_id, image_uri)
    image = load_local_image(digest) if digest else None
    if image is None:
        raise ServiceError(
            "ResourceConflictException",
            f"The image {image_uri} is not in the local cloud's image store: build and push it "
            "with helpers.images.build_and_push on the local backend first.",
            409,
        )
    entrypoint = list(image_config.entry_point or image["entrypoint"] or [])
    command = list(image_config.cmd or image["cmd"] or [])
    rootfs = Path(image["rootfs"])
    workdir = image_config.working_directory or image.get("workdir") or "/"
    env = dict(image.get("env", {}))
    task_root_image_path = env.get("LAMBDA_TASK_ROOT", workdir)
    task_root = str(rootfs / task_root_image_path.lstrip("/"))
    env["LAMBDA_TASK_ROOT"] = task_root
    handler = _handler_from(entrypoint, command, image_uri)
    argv = [image["python"], "-m", "awslambdaric", handler]
    task_roots = (task_root, "/" + task_root_image_path.strip("/"))
    return argv, str(rootfs / workdir.lstrip("/")), task_roots, env, handler


def _handler_from(entrypoint: list[str], command: list[str], image_uri: str) -> str:
    """The handler an image starts: CMD after a Lambda base or awslambdaric entrypoint."""
    starts_ric = entrypoint == ["/lambda-entrypoint.sh"] or (
        len(entrypoint) >= 3 and entrypoint[-2:] == ["-m", "awslambdaric"]
    )
    if not starts_ric or len(command) != 1:
        raise ServiceError(
            "InvalidParameterValueException",
            f"The local process runtime can run {image_uri} only if its ENTRYPOINT starts the "
            "Python runtime interface client (an AWS Lambda base image, or "
            '["python", "-m", "awslambdaric"]) and CMD is the handler, e.g. ["app.handler"]; '
            f"got ENTRYPOINT {entrypoint} CMD {command}.",
            400,
        )
    return command[0]


def image_digest(moto: MotoGateway, region: str, account_id: str, image_uri: str) -> str | None:
    """The digest an ImageUri refers to, looked up in the local ECR when it names a tag."""
    match = _IMAGE_URI.match(image_uri)
    if match is None:
        return None
    if match["digest"]:
        return match["digest"]
    tag = match["tag"] or "latest"
    with moto.backend("ecr", account_id, region) as ecr:
        repository = ecr.repositories.get(match["repository"])
        if repository is None:
            return None
        for image in repository.images:
            if tag in (getattr(image, "image_tags", None) or [image.image_tag]):
                return image.get_image_digest()
    return None


def resolved_image(
    function: dict[str, Any], moto: MotoGateway, region: str, account_id: str
) -> dict[str, Any]:
    """A GetFunction answer whose Code.ResolvedImageUri is `<repository>@sha256:<digest>`.

    moto cuts a digest URI at its first ":" ("repo@sha256@sha256:...") and hashes the URI
    text; AWS gives the repository and the digest the image resolved to, from ECR.
    """
    code = function.get("Code") or {}
    match = _IMAGE_URI.match(code.get("ImageUri") or "")
    digest = match and image_digest(moto, region, account_id, code["ImageUri"])
    if match and digest:
        code["ResolvedImageUri"] = f"{match['registry']}/{match['repository']}@{digest}"
    return function


def remove_extracted_code(state_dir: Path) -> None:
    """Delete every extracted zip and forget cached specs (the local cloud's reset)."""
    _specs.clear()
    shutil.rmtree(state_dir / "lambda" / "code", ignore_errors=True)
