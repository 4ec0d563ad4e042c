"""How one ECS container definition becomes a local process: image, command, environment.

The container's `image` (an ECR URI with a tag or digest) is resolved through the local ECR
to a digest and the digest to an image of the local image store (`localcloud.images`),
exactly as Lambda image functions are. Docker's rules give the command line: a container
`entryPoint` replaces the image's ENTRYPOINT (and drops its CMD), a container `command`
replaces CMD; see
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..images import load_local_image
from ..lambda_.functions import image_digest
from ..trust import trust_environment
from .health import HealthCheckSpec, health_check_spec
from .models import StartFailure
from .secrets import SecretResolver

if TYPE_CHECKING:
    from ..context import CloudContext

DEFAULT_STOP_TIMEOUT_S = 30  # Fargate default when stopTimeout is not set (maximum 120 s)
_PYTHON = re.compile(r"^(?:/usr(?:/local)?/bin/)?python(?:3(?:\.\d+)?)?$")


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ContainerPlan:
    """Everything needed to start one container's process."""

    name: str
    image: str
    essential: bool
    stop_timeout_s: float
    port_mappings: list[dict[str, Any]]
    log_options: dict[str, str] | None  # awslogs options, or None for no CloudWatch Logs
    image_digest: str | None = None
    argv: list[str] = field(default_factory=list)
    cwd: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    health: HealthCheckSpec | None = None  # the container definition's healthCheck
    health_argv: list[str] = field(default_factory=list)


def plan_container(definition: dict[str, Any]) -> ContainerPlan:
    """The static part of a plan (no image lookup yet) from a container definition."""
    log_config = definition.get("logConfiguration") or {}
    log_options = None
    if log_config.get("logDriver") == "awslogs":
        log_options = dict(log_config.get("options") or {})
    return ContainerPlan(
        name=definition["name"],
        image=definition.get("image", ""),
        essential=definition.get("essential", True) is not False,
        stop_timeout_s=float(definition.get("stopTimeout") or DEFAULT_STOP_TIMEOUT_S),
        port_mappings=list(definition.get("portMappings") or []),
        log_options=log_options,
        health=health_check_spec(definition),
    )


class ContainerResolver:
    """Resolves container plans against the local cloud: images, secrets, endpoint, health."""

    def __init__(self, cloud: CloudContext) -> None:
        self.cloud = cloud
        self.secrets = SecretResolver(cloud.moto)

    def resolve(
        self,
        plan: ContainerPlan,
        definition: dict[str, Any],
        override: dict[str, Any],
        region: str,
        account_id: str,
    ) -> None:
        """Fill in the plan's image, command, cwd and environment; StartFailure if impossible."""
        digest = image_digest(self.cloud.moto, region, account_id, plan.image)
        image = load_local_image(digest) if digest else None
        if image is None:
            raise StartFailure(
                f"CannotPullContainerError: pull image manifest has been retried 1 time(s): "
                f"failed to resolve ref {plan.image}: {plan.image}: not found "
                "(the local cloud runs only images built and pushed with "
                "helpers.images.build_and_push)"
            )
        plan.image_digest = digest
        rootfs = Path(image["rootfs"])
        entrypoint = definition.get("entryPoint")
        command = override.get("command") or definition.get("command")
        if entrypoint:
            argv = list(entrypoint) + list(command or [])
        else:
            argv = list(image.get("entrypoint") or []) + list(command or image.get("cmd") or [])
        if not argv:
            raise StartFailure(
                f"CannotStartContainerError: Error response from daemon: no command specified "
                f"for container {plan.name}"
            )
        plan.argv = [_executable(argv[0], image, rootfs), *argv[1:]]
        workdir = definition.get("workingDirectory") or image.get("workdir") or "/"
        plan.cwd = str(rootfs / workdir.lstrip("/"))
        # The local CA in the default trust store first: the image's or task's own values win.
        environment = {**trust_environment(self.cloud.state_dir), **dict(image.get("env") or {})}
        for source in (definition.get("environment"), override.get("environment")):
            for item in source or []:
                environment[item["name"]] = item.get("value", "")
        environment.update(self.secrets.environment(definition.get("secrets") or [], region))
        venv_bin = str(Path(image["python"]).parent)
        host_path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
        environment.update(
            {
                "AWS_ENDPOINT_URL": self.cloud.endpoint_url,
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
                # The task role's credentials on AWS; the local cloud accepts any.
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_SESSION_TOKEN": "test",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE",
                "PATH": f"{venv_bin}:{host_path}",
                "PYTHONUNBUFFERED": environment.get("PYTHONUNBUFFERED", "1"),
            }
        )
        plan.env = environment
        if plan.health is not None:
            plan.health_argv = _health_argv(plan.health, image, rootfs)


def _health_argv(spec: HealthCheckSpec, image: dict[str, Any], rootfs: Path) -> list[str]:
    """The health check's command line: CMD-SHELL through /bin/sh -c, CMD as given."""
    if spec.shell:
        return ["/bin/sh", "-c", " ".join(spec.command[1:])]
    program, *args = spec.command[1:]
    return [_executable(program, image, rootfs), *args]


def _executable(program: str, image: dict[str, Any], rootfs: Path) -> str:
    """The image's venv Python for python-ish programs; image paths inside the rootfs."""
    if _PYTHON.match(program):
        return str(image["python"])
    if program.startswith("/") and (rootfs / program.lstrip("/")).exists():
        return str(rootfs / program.lstrip("/"))
    return program
