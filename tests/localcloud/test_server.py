"""The daemon object's wiring: engines stop with it and are wiped by reset."""

import shutil
import tempfile
from pathlib import Path

import pytest
import redis

from localcloud.server import LocalCloud

pytestmark = pytest.mark.engines  # a Redis server


@pytest.fixture
def local_cloud():
    state = Path(tempfile.mkdtemp(prefix="localcloud-server-"))
    state.chmod(0o755)
    cloud = LocalCloud(state, port=0)
    yield cloud
    cloud.close()
    shutil.rmtree(state, ignore_errors=True)


def test_close_stops_engines_and_reset_wipes_them(local_cloud):
    endpoint = local_cloud.context.engines.redis("cache:pytest")
    client = redis.Redis(host=endpoint.host, port=endpoint.port)
    assert client.ping()
    assert [e["owner"] for e in local_cloud.status()["engines"]] == ["cache:pytest"]

    local_cloud.close()
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host=endpoint.host, port=endpoint.port, socket_connect_timeout=1).ping()

    local_cloud.context.engines.redis("cache:pytest")
    local_cloud.reset()
    assert local_cloud.context.engines.list() == []
    assert not endpoint.data_dir.exists()


def test_control_api_answers_health_and_refuses_unknown_calls(local_cloud):
    status, health = local_cloud.control("health", b"")
    assert status == 200 and health["status"] == "ok"
    status, answer = local_cloud.control("nonsense", b"")
    assert status == 404 and "nonsense" in answer["error"]


def test_call_moto_returns_parsed_results_and_raises_aws_errors(local_cloud):
    from localcloud.protocols import ServiceError

    created = local_cloud.context.moto.call(
        "secretsmanager", "CreateSecret", {"Name": "pytest", "SecretString": "s"}, "us-east-1"
    )
    assert created["Name"] == "pytest" and created["ARN"].startswith("arn:aws:secretsmanager:")
    with pytest.raises(ServiceError) as missing:
        local_cloud.context.moto.call(
            "rds", "DescribeDBClusters", {"DBClusterIdentifier": "nope"}, "us-east-1"
        )
    assert (missing.value.code, missing.value.status) == ("DBClusterNotFoundFault", 404)
