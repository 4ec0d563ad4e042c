"""Notebook 22's database password appears nowhere it should not: outputs, logs, definitions.

The live test runs the notebook against the session's private local cloud without the
teardown, reads the app user's passwords (the current one and the one rotated away), and
looks for them in the executed notebook, the daemon's log files, every CloudWatch Logs
event and every task definition. The unit tests show that the scan finds a planted value.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import papermill
import pytest

import helpers
from helpers import naming
from localcloud import daemon

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "notebooks" / "22_fargate_aurora_proxy.ipynb"
RUN_ID = "leakscan"
MIN_SECRET_LENGTH = 8  # shorter values would match by chance


def leaks(secret: str, sources: Mapping[str, str]) -> list[str]:
    """Names of the sources whose text holds the secret, as is, JSON-escaped or in base64."""
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"a secret of {len(secret)} characters cannot be scanned for reliably")
    forms = {secret, json.dumps(secret)[1:-1], base64.b64encode(secret.encode()).decode()}
    return sorted(name for name, text in sources.items() if any(f in text for f in forms))


def log_file_texts(state_dir: Path) -> dict[str, str]:
    """Every file under the state directory's logs/ and processes/, as text."""
    found = {}
    for folder in ("logs", "processes"):
        for path in sorted((state_dir / folder).rglob("*")):
            if path.is_file():
                found[str(path.relative_to(state_dir))] = path.read_text(errors="replace")
    return found


class RunningCloud:
    """boto3 clients of the daemon that runs now, without `up`'s restart on a code change.

    Other work on the local cloud's code would otherwise restart it between the notebook
    and the scan, and the restart forgets every resource the scan reads.
    """

    def __init__(self) -> None:
        info = daemon.running()
        assert info is not None, "the local cloud stopped while the notebook ran"
        self.session = boto3.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
        )
        self.endpoint = info.endpoint

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint)


def cloudwatch_texts(lab: Any) -> Iterator[tuple[str, str]]:
    """(log group, every event message of it joined) for every log group."""
    logs = lab.client("logs")
    for page in logs.get_paginator("describe_log_groups").paginate():
        for group in page["logGroups"]:
            name = group["logGroupName"]
            events = logs.get_paginator("filter_log_events").paginate(logGroupName=name)
            yield name, "\n".join(e["message"] for p in events for e in p["events"])


def task_definition_texts(lab: Any) -> Iterator[tuple[str, str]]:
    """(ARN, the describe_task_definition answer as JSON) for every registered revision."""
    ecs = lab.client("ecs")
    for status in ("ACTIVE", "INACTIVE"):
        for page in ecs.get_paginator("list_task_definitions").paginate(status=status):
            for arn in page["taskDefinitionArns"]:
                described = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
                yield arn, json.dumps(described, default=str)


# ----- the scan itself ------------------------------------------------------------------------


def test_a_planted_value_is_found_in_any_form() -> None:
    secret = "Q7hV2xLm9pRt4sWz"
    sources = {
        "clean.log": "nothing to see",
        "notebook.ipynb": json.dumps({"outputs": [f"password={secret}"]}),
        "env.json": json.dumps({"DB_PASSWORD": f'{secret}"'}),
        "encoded.log": base64.b64encode(secret.encode()).decode(),
    }
    assert leaks(secret, sources) == ["encoded.log", "env.json", "notebook.ipynb"]
    assert leaks("AnotherValue123456", sources) == []


def test_a_value_too_short_to_scan_for_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be scanned"):
        leaks("abc", {"x": "abc"})


def test_log_files_are_read_from_the_state_directory(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "daemon.log").write_text("started\nDB_PASSWORD=Q7hV2xLm9pRt4sWz\n")
    (tmp_path / "engines").mkdir()
    (tmp_path / "engines" / "ibdata1").write_bytes(b"Q7hV2xLm9pRt4sWz")  # not a log
    found = log_file_texts(tmp_path)
    assert list(found) == ["logs/daemon.log"]
    assert leaks("Q7hV2xLm9pRt4sWz", found) == ["logs/daemon.log"]


# ----- notebook 22 against the private daemon -------------------------------------------------


@pytest.mark.long
def test_notebook_22_shows_and_logs_no_password(
    cloud: object, cloud_state: Path, tmp_path: Path
) -> None:
    executed = tmp_path / NOTEBOOK.name
    try:
        papermill.execute_notebook(
            str(NOTEBOOK),
            str(executed),
            parameters={
                "RUN_ID": RUN_ID,
                "CLEANUP": False,
                "LOAD_REQUESTS": 100,
                "RACE_CLIENTS": 10,
            },
            cwd=str(NOTEBOOK.parent),
            kernel_name="python3",
            progress_bar=False,
        )
        lab = RunningCloud()
        secrets = lab.client("secretsmanager")
        name = naming.resource_name(RUN_ID, "22", "inventory-db-user", 512)
        passwords = [
            json.loads(secrets.get_secret_value(SecretId=name, VersionStage=stage)["SecretString"])[
                "password"
            ]
            for stage in ("AWSCURRENT", "AWSPREVIOUS")  # the notebook rotates it once
        ]
        assert passwords[0] != passwords[1]
        sources = {"executed notebook": executed.read_text(), **log_file_texts(cloud_state)}
        sources.update(cloudwatch_texts(lab))
        sources.update(task_definition_texts(lab))
        assert any(key.startswith("/ecs/") for key in sources), "the task's log group was scanned"
        for password in passwords:
            assert leaks(password, sources) == []
    finally:
        lab = helpers.connect("local", run_id=RUN_ID, quiet=True)
        helpers.cleanup.teardown(lab, pattern="22", quiet=True)
