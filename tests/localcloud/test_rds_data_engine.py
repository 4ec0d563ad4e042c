"""The Data API provider on a private MariaDB, without the RDS provider or a daemon.

A stand-in RDS provider hands out clusters that point at one MariaDB server from the engine
manager; moto (in-process) keeps the secrets; the real edge serves boto3 over HTTP. Every
test here shows what the live daemon (tests/localcloud/test_rds_data.py) cannot show
quickly: the statement timeout, a paused cluster, a cluster without instances, connection
reuse.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from test_rds_data import DataApi, error, p, values
from werkzeug.serving import make_server

from localcloud.context import CloudContext
from localcloud.edge import Edge
from localcloud.engines import EngineManager, kill_leftovers
from localcloud.motogateway import MotoGateway
from localcloud.rds.provider import RdsProvider
from localcloud.rds_data import RdsDataProvider
from localcloud.registry import Provider, Registry

pytestmark = pytest.mark.engines
REGION = "us-east-1"
ACCOUNT = "123456789012"
PASSWORD = "engine-test-pw"
IDLE_SECONDS = 1.0
TIMEOUT_SECONDS = 1.5


@dataclass
class FakeCluster:
    """The ClusterDatabase fields the Data API provider reads."""

    identifier: str
    arn: str
    host: str
    port: int
    master_username: str
    password: str
    database: str | None
    http_endpoint_enabled: bool
    secret_arn: str | None
    instance_ids: tuple[str, ...]
    min_acu: float | None = 0.5
    max_acu: float | None = 4.0
    seconds_until_auto_pause: int | None = None
    engine_pid: int | None = None


class FakeCapacity:
    """The capacity monitor's wake(): True (resuming) for the clusters listed in `paused`."""

    def __init__(self) -> None:
        self.paused: set[str] = set()
        self.woken: list[str] = []

    def wake(self, cluster_id: str) -> bool:
        self.woken.append(cluster_id)
        return cluster_id in self.paused


class FakeRds(Provider):
    """Stands in for the RDS provider: cluster_database() and capacity, no operations."""

    service = "rds"

    def __init__(self, cloud: CloudContext) -> None:
        super().__init__(cloud)
        self.clusters: dict[str, FakeCluster] = {}
        self.capacity = FakeCapacity()

    def cluster_database(self, region: str, account_id: str, arn: str) -> FakeCluster:
        return self.clusters[arn]


@dataclass
class Harness:
    """What the engine-only tests need beyond DataApi."""

    api: DataApi
    rds: FakeRds
    provider: RdsDataProvider
    cluster: FakeCluster

    def add_cluster(self, name: str, **changes: Any) -> str:
        """Another fake cluster on the same server; returns its ARN."""
        arn = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:{name}"
        fields = {**self.cluster.__dict__, "identifier": name, "arn": arn, **changes}
        self.rds.clusters[arn] = FakeCluster(**fields)
        return arn


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    """A MariaDB server, moto, the provider and the edge, served on a local port."""
    base = Path(tempfile.mkdtemp(prefix="lc-rds-data-"))
    base.chmod(0o755)
    manager = EngineManager(base / "engines")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LOCALCLOUD_DATA_API_TRANSACTION_IDLE_SECONDS", str(IDLE_SECONDS))
        env.setenv("LOCALCLOUD_DATA_API_STATEMENT_TIMEOUT_SECONDS", str(TIMEOUT_SECONDS))
        cloud = CloudContext(base, "", MotoGateway(), manager)
        rds = FakeRds(cloud)
        provider = RdsDataProvider(cloud)
    cloud.providers.add(rds, as_class=RdsProvider)
    cloud.providers.add(provider)
    edge = Edge(Registry([rds, provider]), cloud.moto, _no_control)
    server = make_server("127.0.0.1", 0, edge, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = manager.mysql(
            "rds:data-api-test", user="admin", password=PASSWORD, database="labdb"
        )
        session = boto3.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
        )
        url = f"http://127.0.0.1:{server.server_port}"
        config = Config(retries={"max_attempts": 1}, read_timeout=120)
        secrets = session.client("secretsmanager", endpoint_url=url, config=config)
        secret_arn = secrets.create_secret(
            Name="rds!cluster-data-api-test",
            SecretString=f'{{"username": "admin", "password": "{PASSWORD}"}}',
        )["ARN"]
        cluster = FakeCluster(
            identifier="data-api-test",
            arn=f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:data-api-test",
            host=endpoint.host,
            port=endpoint.port,
            master_username="admin",
            password=PASSWORD,
            database="labdb",
            http_endpoint_enabled=True,
            secret_arn=secret_arn,
            instance_ids=("data-api-test-w1",),
            engine_pid=endpoint.pid,
        )
        rds.clusters[cluster.arn] = cluster
        api = DataApi(
            client=session.client("rds-data", endpoint_url=url, config=config),
            secrets=secrets,
            cluster_arn=cluster.arn,
            secret_arn=secret_arn,
            username="admin",
            database="labdb",
            no_endpoint_arn="",
            idle_seconds=IDLE_SECONDS,
        )
        result = Harness(api, rds, provider, cluster)
        api.no_endpoint_arn = result.add_cluster("no-endpoint", http_endpoint_enabled=False)
        yield result
    finally:
        provider.shutdown()
        server.shutdown()
        manager.wipe()
        kill_leftovers(base / "engines")
        shutil.rmtree(base, ignore_errors=True)


def _no_control(name: str, body: bytes) -> tuple[int, Any]:
    """The edge's control API is not used here."""
    return 404, {"error": name}


# ----- what only this harness can show -----------------------------------------------------


def test_a_statement_over_the_time_limit_is_stopped(harness):
    api = harness.api
    started = time.monotonic()
    code, status, message = error(lambda: api.run("SELECT SLEEP(5)"))
    assert (code, status, message) == ("StatementTimeoutException", 400, "Query timed out")
    assert time.monotonic() - started < 4
    assert values(api.run("SELECT 1")) == [[1]]  # the pooled connection is still usable


def test_continue_after_timeout_lets_the_statement_finish(harness):
    api = harness.api
    table = api.table("n INT")
    sql = f"INSERT INTO {table} SELECT 7 FROM (SELECT SLEEP(2)) AS slow"
    code, _, _ = error(lambda: api.run(sql, continueAfterTimeout=True))
    assert code == "StatementTimeoutException"
    assert values(api.run(f"SELECT n FROM {table}")) == [[7]]
    code, _, _ = error(lambda: api.run(sql))  # without it, the statement is stopped
    assert code == "StatementTimeoutException"
    assert values(api.run(f"SELECT COUNT(*) FROM {table}")) == [[1]]


def test_a_paused_cluster_answers_resuming(harness):
    api, capacity = harness.api, harness.rds.capacity
    capacity.paused.add("data-api-test")
    try:
        code, status, message = error(lambda: api.run("SELECT 1"))
    finally:
        capacity.paused.clear()
    assert (code, status) == ("DatabaseResumingException", 400)
    assert message.startswith("The Aurora DB instance data-api-test-w1 is resuming")
    assert values(api.run("SELECT 1")) == [[1]]
    assert "data-api-test" in capacity.woken


def test_a_cluster_without_instances_has_no_database(harness):
    arn = harness.add_cluster("no-instance", instance_ids=())
    code, status, _ = error(
        lambda: harness.api.client.execute_statement(
            resourceArn=arn, secretArn=harness.api.secret_arn, sql="SELECT 1"
        )
    )
    assert (code, status) == ("DatabaseNotFoundException", 404)


def test_calls_reuse_pooled_connections(harness):
    api = harness.api
    ids = {values(api.run("SELECT CONNECTION_ID()"))[0][0] for _ in range(5)}
    assert len(ids) == 1
    assert harness.provider.status()["idle_connections"] >= 1


def test_concurrent_calls_each_get_a_connection(harness):
    api = harness.api
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(values(api.run("SELECT SLEEP(0.5), 1"))))
        for _ in range(4)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [[[0, 1]]] * 4
    assert time.monotonic() - started < 1.8


def test_without_database_the_cluster_database_is_used(harness):
    api = harness.api
    response = api.client.execute_statement(
        resourceArn=api.cluster_arn, secretArn=api.secret_arn, sql="SELECT DATABASE()"
    )
    assert values(response) == [["labdb"]]


def test_status_and_reset_close_everything(harness):
    api, provider = harness.api, harness.provider
    transaction = api.begin()
    assert provider.status()["open_transactions"] >= 1
    provider.reset()
    assert provider.status() == {"open_transactions": 0, "idle_connections": 0}
    code, _, _ = error(lambda: api.run("SELECT 1", transactionId=transaction))
    assert code == "TransactionNotFoundException"
    assert values(api.run("SELECT 1")) == [[1]]
    assert p("x", longValue=1) == {"name": "x", "value": {"longValue": 1}}


def test_a_transaction_opened_by_a_statement_does_not_leak_to_the_next_call(harness):
    api = harness.api
    table = api.table("n INT")
    api.run("START TRANSACTION")
    api.run(f"INSERT INTO {table} VALUES (1)")  # autocommits: a call without transactionId
    assert values(api.run("SELECT @@in_transaction")) == [[0]]
    assert values(api.run(f"SELECT COUNT(*) FROM {table}")) == [[1]]
