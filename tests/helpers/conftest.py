"""Fixtures of the SDK's unit tests: a lab that never talks to a backend, and Stubbers on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from helpers.lab import Lab, Ledger

FAKE_ACCOUNT = "123456789012"  # the local cloud's fake account: never a real one in tests


@pytest.fixture
def offline_lab(tmp_path: Path) -> Lab:
    """An offline lab in eu-west-1, run "unit"; "local", so that waits poll every half second.

    Not `lab`: that is the live lab on the session's local cloud, which the live tests in this
    folder use.
    """
    session = boto3.Session(
        aws_access_key_id="x", aws_secret_access_key="y", region_name="eu-west-1"
    )
    lab = Lab("local", "eu-west-1", "unit", session, None, Ledger(tmp_path / "ledger.jsonl"))
    lab.__dict__["account_id"] = FAKE_ACCOUNT  # the cached_property, without calling STS
    return lab


@pytest.fixture
def stubber(offline_lab: Lab) -> Callable[[str], Stubber]:
    """stubber("elbv2"): an active Stubber on the offline lab's cached client of that service."""

    def make(service: str) -> Stubber:
        stub = Stubber(offline_lab.client(service))
        stub.activate()
        return stub

    return make
