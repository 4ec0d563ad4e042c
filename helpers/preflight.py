"""Pre-flight checks: is this machine and account ready for a notebook? A short verdict table.

Every failed check comes with the exact thing to do. On AWS the run also needs explicit
consent to costs (the notebook's CONSENT_TO_COSTS parameter), given after reading its cost
table.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from localcloud import client as localcloud

from .images import docker_client, in_sagemaker_studio
from .lab import Lab
from .report import text_table


@dataclass(frozen=True)
class Check:
    """One pre-flight check and its verdict."""

    check: str
    ok: bool
    detail: str
    fix: str = ""


class PreflightError(RuntimeError):
    """At least one check failed; the message lists what to do."""


def run(
    lab: Lab, *, consent_to_costs: bool = False, needs_docker: bool = False, quiet: bool = False
) -> list[Check]:
    """Run the checks for the lab's backend, print the verdict, raise if any failed."""
    checks = [_python()]
    checks += (
        _local_checks(lab) if lab.is_local else _aws_checks(lab, consent_to_costs, needs_docker)
    )
    if not quiet:
        rows = [
            {"check": c.check, "verdict": "ok" if c.ok else "FAILED", "detail": c.detail}
            for c in checks
        ]
        print(text_table(rows))
    failed = [c for c in checks if not c.ok]
    if failed:
        raise PreflightError(
            "pre-flight failed:\n" + "\n".join(f"- {c.check}: {c.fix}" for c in failed)
        )
    return checks


def _python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info >= (3, 11)
    return Check("python", ok, version, "use Python 3.11 or newer (environment.yml has 3.12)")


def _local_checks(lab: Lab) -> list[Check]:
    """Engines installed; the local cloud answering on loopback."""
    missing = localcloud.missing_engine_packages()
    engine_check = Check(
        "database engines",
        not missing,
        "MariaDB, PostgreSQL and Redis servers found"
        if not missing
        else f"missing: {', '.join(missing)}",
        f"run `make setup`, or `sudo apt-get install -y {' '.join(missing)}`",
    )
    info = localcloud.running()
    cloud_check = Check(
        "local cloud",
        info is not None and info.endpoint == lab.endpoint_url,
        f"{lab.endpoint_url} (loopback only)" if info else "not answering",
        "run `python -m localcloud up` and look at `python -m localcloud logs`",
    )
    return [engine_check, cloud_check]


def _aws_checks(lab: Lab, consent: bool, needs_docker: bool) -> list[Check]:
    """Credentials, region, Docker (when the notebook builds images) and cost consent."""
    from botocore.exceptions import BotoCoreError, ClientError

    checks = []
    try:
        identity = lab.client("sts").get_caller_identity()
        # Show the principal's kind and name, never the account id.
        principal = identity["Arn"].split(":", 5)[-1]
        checks.append(Check("credentials", True, principal))
    except (BotoCoreError, ClientError) as error:
        checks.append(
            Check(
                "credentials",
                False,
                type(error).__name__,
                "configure credentials (aws configure, a profile via AWS_PROFILE, "
                "or the SageMaker execution role) and re-run this cell",
            )
        )
    regions = lab.session.get_available_regions("rds-data")
    checks.append(
        Check(
            "region",
            lab.region in regions,
            lab.region,
            f"set REGION to a region with every service used, e.g. {regions[:3]}",
        )
    )
    if needs_docker:
        checks.append(_docker())
    checks.append(
        Check(
            "cost consent",
            consent,
            "given" if consent else "not given",
            "read the cost table above, then set CONSENT_TO_COSTS = True",
        )
    )
    return checks


def _docker() -> Check:
    """A reachable Docker engine (and the SageMaker Studio case)."""
    studio = in_sagemaker_studio()
    try:
        version = docker_client().version().get("Version", "?")
        return Check(
            "docker", True, f"engine {version}" + (" (SageMaker Studio)" if studio else "")
        )
    except Exception as error:  # the docker SDK raises several unrelated types
        fix = (
            (
                "enable Docker access on the Studio domain (DockerSettings.EnableDockerAccess="
                "ENABLED), then restart the JupyterLab app"
            )
            if studio
            else "start Docker (Docker Desktop, or `sudo systemctl start docker`), re-run this cell"
        )
        return Check("docker", False, type(error).__name__, fix)


def local_cloud_status() -> str:
    """The local cloud's services, engines and tagged resources, as printed tables."""
    return localcloud.status_text(localcloud.status())
