"""Live fixtures shared by the tests that run against the session's local cloud.

What these build is scaffolding for a test, not its subject, so its names stay outside the
course's `scd-<run>-<pattern>-` scheme: the course's teardown never finds it, and the tests
of that teardown can expect exact results. Each fixture deletes what it made.

Most are module-scoped: a test of the daemon's reset wipes everything, so nothing is kept
from one test file to the next except the images, whose factory checks they are still there.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError
from polling import wait_until

import helpers
from helpers.images import BuiltImage
from localcloud import daemon

LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"Service": "lambda.amazonaws.com"},
        }
    ],
}
AURORA_ENGINE_VERSION = "8.0.mysql_aurora.3.08.0"
AURORA_SCALING = {"MinCapacity": 0, "MaxCapacity": 4, "SecondsUntilAutoPause": 300}


def unique(prefix: str) -> str:
    """`<prefix>-` and six random hex digits: a name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def zip_files(files: Mapping[str, str]) -> bytes:
    """A zip archive of these files (name -> text), as CreateFunction takes it."""
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return package.getvalue()


def raw_request(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes, list[tuple[str, str]]]:
    """One request on a fresh connection, errors included: (status, headers lowercased, body,
    raw header list), e.g. to an API Gateway listener."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        raw = response.getheaders()
        return response.status, {k.lower(): v for k, v in raw}, response.read(), raw
    finally:
        connection.close()


class EchoHandler(BaseHTTPRequestHandler):
    """Answers every request with what it received, as JSON, status 207; `/sleep...` after 2 s."""

    protocol_version = "HTTP/1.1"

    def _echo(self) -> None:
        if self.path.startswith("/sleep"):
            time.sleep(2)  # longer than a test's short integration timeout
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        path, _, query = self.path.partition("?")
        payload = json.dumps(
            {
                "method": self.command,
                "path": path,
                "query": query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
        ).encode()
        self.send_response(207)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Backend", "echo")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _echo

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def echo_backend() -> Iterator[str]:
    """An HTTP echo server on 127.0.0.1 (its base URL), e.g. an HTTP_PROXY integration's."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def module_lab(cloud: daemon.DaemonInfo) -> helpers.Lab:
    """A lab on the session's local cloud for module-scoped fixtures (run id "pytest")."""
    return helpers.connect("local", run_id="pytest", quiet=True)


# ----- images ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PushedImage:
    """An image the process runtime built, pushed to an ECR repository of its own."""

    repository: dict[str, Any]
    context: Path  # the build context: the files and the Dockerfile
    built: BuiltImage

    @property
    def uri(self) -> str:
        """The image by digest: what a task definition or function names."""
        return self.built.image_uri

    def tagged(self, tag: str) -> str:
        """The repository's image `tag` (which may not exist)."""
        return f"{self.repository['repositoryUri']}:{tag}"


class ImageFactory:
    """Builds images from files into fresh ECR repositories, once per distinct content."""

    def __init__(self, lab: helpers.Lab, root: Path) -> None:
        self.lab, self.root = lab, root
        self.ecr = lab.client("ecr")
        self.images: dict[str, PushedImage] = {}
        self.repositories: set[str] = set()

    def __call__(self, files: Mapping[str, str], tag: str = "latest") -> PushedImage:
        """The image of `files` (name -> text, a "Dockerfile" among them), pushed as `tag`."""
        content = json.dumps([sorted(files.items()), tag]).encode()
        key = hashlib.sha256(content).hexdigest()[:12]
        known = self.images.get(key)
        if known and self._still_pushed(known):
            return known
        context = self.root / key
        context.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (context / name).write_text(text)
        repository = self._repository(f"pytest-image-{key}")
        built = helpers.images.build_and_push(self.lab, repository, context, tag)
        self.images[key] = PushedImage(repository, context, built)
        return self.images[key]

    def _repository(self, name: str) -> dict[str, Any]:
        """The repository `name`, created if missing (a reset of the daemon deletes it)."""
        self.repositories.add(name)
        try:
            return self.ecr.create_repository(repositoryName=name)["repository"]
        except self.ecr.exceptions.RepositoryAlreadyExistsException:
            return self.ecr.describe_repositories(repositoryNames=[name])["repositories"][0]

    def _still_pushed(self, image: PushedImage) -> bool:
        """False once a reset of the daemon has taken the repository or the image away."""
        try:
            self.ecr.describe_images(
                repositoryName=image.repository["repositoryName"],
                imageIds=[{"imageDigest": image.built.digest}],
            )
        except ClientError:
            return False
        return True

    def delete_all(self) -> None:
        """Delete every repository this factory made, with its images."""
        for name in self.repositories:
            with contextlib.suppress(ClientError):
                self.ecr.delete_repository(repositoryName=name, force=True)


@pytest.fixture(scope="session")
def build_image(
    cloud: daemon.DaemonInfo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ImageFactory]:
    """build_image({"Dockerfile": ..., "app.py": ...}, tag="v1"): a pushed process-runtime image.

    The same files give the same image for the whole session, in one repository per image.
    """
    lab = helpers.connect("local", run_id="pytest", quiet=True)
    factory = ImageFactory(lab, tmp_path_factory.mktemp("images"))
    yield factory
    factory.delete_all()


# ----- network, ECS, IAM, Lambda ------------------------------------------------------


@dataclass(frozen=True)
class DefaultNetwork:
    """The default VPC and its default subnets (one per Availability Zone, in AZ order)."""

    vpc_id: str
    subnet_ids: list[str]

    def awsvpc(self, subnets: int = 2) -> dict[str, Any]:
        """A Fargate networkConfiguration on the first `subnets` default subnets."""
        chosen = self.subnet_ids[:subnets]
        return {"awsvpcConfiguration": {"subnets": chosen, "assignPublicIp": "ENABLED"}}


@pytest.fixture(scope="module")
def default_network(module_lab: helpers.Lab) -> DefaultNetwork:
    """The default VPC's id and default subnets, as the local cloud made them at start."""
    ec2 = module_lab.client("ec2")
    found = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])
    subnets = sorted(found["Subnets"], key=lambda s: s["AvailabilityZone"])
    return DefaultNetwork(subnets[0]["VpcId"], [s["SubnetId"] for s in subnets])


@pytest.fixture(scope="module")
def ecs_cluster(module_lab: helpers.Lab) -> Iterator[str]:
    """The name of an ECS cluster for one test module.

    At the end its services are deleted and its tasks stopped before the cluster goes.
    """
    ecs = module_lab.client("ecs")
    name = unique("pytest-cluster")
    ecs.create_cluster(clusterName=name)
    yield name
    with contextlib.suppress(ecs.exceptions.ClusterNotFoundException):
        for arn in ecs.list_services(cluster=name)["serviceArns"]:
            ecs.delete_service(cluster=name, service=arn, force=True)
        for arn in ecs.list_tasks(cluster=name)["taskArns"]:
            ecs.stop_task(cluster=name, task=arn)
        wait_until(
            lambda: not ecs.list_tasks(cluster=name)["taskArns"],
            what=f"the tasks of cluster {name} to stop",
        )
        wait_until(lambda: _deleted_cluster(ecs, name), what=f"cluster {name} to be deleted")


def _deleted_cluster(ecs: Any, name: str) -> bool:
    """Delete the cluster; False while a deleted service still holds on to it."""
    try:
        ecs.delete_cluster(cluster=name)
    except ecs.exceptions.ClusterContainsServicesException:
        return False
    return True


@pytest.fixture(scope="module")
def lambda_role(module_lab: helpers.Lab) -> Iterator[str]:
    """The ARN of an IAM role that Lambda may assume; deleted at the end of the module."""
    iam = module_lab.client("iam")
    name = unique("pytest-lambda")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    yield role["Role"]["Arn"]
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        iam.delete_role(RoleName=name)


class ZipFunctions:
    """Creates Python zip functions on one role; deletes them all at the end."""

    def __init__(self, client: Any, role_arn: str) -> None:
        self.client, self.role_arn = client, role_arn
        self.created: list[str] = []

    def create(self, files: Mapping[str, str], handler: str, **settings: Any) -> dict[str, Any]:
        """CreateFunction (python3.12) from `files`; `settings` adds Timeout, MemorySize ..."""
        name = unique(f"pytest-{handler.rsplit('.', 1)[-1]}")
        created = self.client.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=self.role_arn,
            Handler=handler,
            Code={"ZipFile": zip_files(files)},
            **settings,
        )
        self.created.append(name)
        return created

    def delete_all(self) -> None:
        """Delete every function this object created (those still there)."""
        for name in self.created:
            with contextlib.suppress(self.client.exceptions.ResourceNotFoundException):
                self.client.delete_function(FunctionName=name)


@pytest.fixture(scope="module")
def zip_functions(module_lab: helpers.Lab, lambda_role: str) -> Iterator[ZipFunctions]:
    """Zip functions for one test module, on the module's Lambda role."""
    functions = ZipFunctions(module_lab.client("lambda"), lambda_role)
    yield functions
    functions.delete_all()


# ----- Aurora ---------------------------------------------------------------------------


class AuroraClusters:
    """Aurora MySQL clusters made through the RDS API (a MariaDB server each)."""

    def __init__(self, rds: Any) -> None:
        self.rds = rds
        self.created: list[str] = []

    def create(self, prefix: str, writer: bool = True, **overrides: Any) -> dict[str, Any]:
        """A cluster as the course makes one; `writer` adds its instance `<identifier>-w1`.

        `overrides` replace the defaults below; an override of None leaves that one out.
        """
        identifier = unique(f"pytest-{prefix}")
        params: dict[str, Any] = {
            "DBClusterIdentifier": identifier,
            "Engine": "aurora-mysql",
            "EngineVersion": AURORA_ENGINE_VERSION,
            "MasterUsername": "admin",
            "ManageMasterUserPassword": True,
            "DatabaseName": "labdb",
            "ServerlessV2ScalingConfiguration": AURORA_SCALING,
            **overrides,
        }
        self.rds.create_db_cluster(**{k: v for k, v in params.items() if v is not None})
        self.created.append(identifier)
        if writer:
            self.rds.create_db_instance(
                DBInstanceIdentifier=f"{identifier}-w1",
                DBClusterIdentifier=identifier,
                Engine="aurora-mysql",
                DBInstanceClass="db.serverless",
            )
        return self.describe(identifier)

    def describe(self, identifier: str) -> dict[str, Any]:
        """The cluster's description."""
        return self.rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]

    def delete(self, identifier: str) -> None:
        """Delete a cluster's instances, then the cluster; nothing if it is gone already."""
        try:
            cluster = self.describe(identifier)
        except ClientError:
            return
        for member in cluster["DBClusterMembers"]:
            self.rds.delete_db_instance(DBInstanceIdentifier=member["DBInstanceIdentifier"])
        self.rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True)

    def delete_all(self) -> None:
        """Delete every cluster this object created."""
        for identifier in self.created:
            self.delete(identifier)


@pytest.fixture
def aurora_clusters(lab: helpers.Lab) -> Iterator[AuroraClusters]:
    """Aurora MySQL clusters for one test, all deleted after it."""
    clusters = AuroraClusters(lab.client("rds"))
    yield clusters
    clusters.delete_all()
