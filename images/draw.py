"""Architecture diagrams, drawn from code: `python images/draw.py` (or `make diagrams`).

Each pattern diagram shows AWS's service icons joined by the labelled arrows its notebook's
"Architecture" section explains, drawn by the `diagrams` library with Graphviz and saved as
`images/<notebook>.png`. Change a pattern, change its entry here, re-run. The repository's own
architecture (`docs/architecture.md`) is one larger diagram, `images/architecture.png`, laid
out on a grid below with matplotlib.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

HERE = Path(__file__).resolve().parent
COLOURS = {
    "you": "#e8eef7",
    "aws": "#fff4e0",
    "data": "#e6f4ea",
    "context": "#f1f1f1",
    "process": "#f3e8f7",
    "note": "#ffffff",
}


class Node(NamedTuple):
    """One icon of a pattern diagram: `diagrams` class ("aws.compute.Lambda") and label."""

    icon: str
    label: str
    group: str = ""  # drawn inside a labelled frame of that name ("VPC")


class Arrow(NamedTuple):
    """A labelled arrow between two nodes of a pattern diagram, by their keys."""

    start: str
    end: str
    label: str
    style: str = "solid"  # "dashed" for a path the pattern shows but does not take


class Pattern(NamedTuple):
    """A pattern's diagram: its nodes in reading order and the arrows between them."""

    nodes: dict[str, Node]
    arrows: list[Arrow]


NOTEBOOK = Node("onprem.client.Client", "notebook")
ECR = Node("aws.compute.ECR", "Amazon ECR\nrepository")

PATTERNS: dict[str, Pattern] = {
    "16_container_lambda": Pattern(
        {
            "you": Node("onprem.client.Client", "notebook\n(%%writefile, build)"),
            "ecr": ECR,
            "function": Node("aws.compute.Lambda", "AWS Lambda\n(image function)"),
            "logs": Node("aws.management.Cloudwatch", "CloudWatch\nLogs + metrics"),
        },
        [
            Arrow("you", "ecr", "push image"),
            Arrow("ecr", "function", "image URI\n@digest"),
            Arrow("function", "logs", "REPORT lines,\nDuration"),
        ],
    ),
    "17_fargate_batch_task": Pattern(
        {
            "you": Node("onprem.client.Client", "notebook\n(%%writefile, build)"),
            "ecr": ECR,
            "task": Node("aws.compute.Fargate", "ECS on Fargate\n(one task)"),
            "bucket": Node("aws.storage.S3", "S3 bucket"),
            "logs": Node("aws.management.CloudwatchLogs", "CloudWatch Logs"),
        },
        [
            Arrow("you", "ecr", "push image"),
            Arrow("ecr", "task", "run_task"),
            Arrow("task", "bucket", "result JSON"),
            Arrow("task", "logs", "log lines\n(awslogs)"),
        ],
    ),
    "18_fargate_http_service": Pattern(
        {
            "you": Node("onprem.client.Client", "client\n(notebook)"),
            "api": Node("aws.network.APIGateway", "API Gateway\nHTTP API"),
            "alb": Node("aws.network.ALB", "Application\nLoad Balancer"),
            "service": Node("aws.compute.Fargate", "ECS service\n(2 Fargate tasks)"),
            "table": Node("aws.database.Dynamodb", "DynamoDB\norders table"),
        },
        [
            Arrow("you", "api", "HTTPS"),
            Arrow("api", "alb", "HTTP_PROXY"),
            Arrow("alb", "service", "healthy\ntargets"),
            Arrow("service", "table", "PutItem,\nGetItem, Scan"),
        ],
    ),
    "19_aurora_data_api": Pattern(
        {
            "you": NOTEBOOK,
            "function": Node("aws.compute.Lambda", "AWS Lambda\n(ZIP function)"),
            "data_api": Node("aws.database.RDS", "RDS Data API\n(HTTPS)"),
            "cluster": Node("aws.database.Aurora", "Aurora Serverless v2\n(MySQL, 0-4 ACU)"),
        },
        [
            Arrow("you", "function", "invoke"),
            Arrow("function", "data_api", "ExecuteStatement\n+ secret ARN"),
            Arrow("data_api", "cluster", "SQL"),
        ],
    ),
    "20_rds_proxy_lambda": Pattern(
        {
            "you": NOTEBOOK,
            "function": Node("aws.compute.Lambda", "AWS Lambda\n(in the VPC)", "VPC"),
            "proxy": Node("aws.database.RDS", "RDS Proxy\n(connection pool)", "VPC"),
            "cluster": Node("aws.database.Aurora", "Aurora\nServerless v2", "VPC"),
            "secret": Node("aws.security.SecretsManager", "Secrets Manager\nsecret"),
        },
        [
            Arrow("you", "function", "invoke\n(a burst)"),
            Arrow("function", "proxy", "MySQL protocol\n(TLS)"),
            Arrow("proxy", "cluster", "pooled\nconnections"),
            Arrow("proxy", "secret", "reads the\ncredentials"),
        ],
    ),
    "21_dynamodb_streams": Pattern(
        {
            "you": Node("onprem.client.Client", "notebook and\nwriter Lambda"),
            "table": Node("aws.database.Dynamodb", "DynamoDB\nsales-events"),
            "stream": Node("aws.database.DynamodbStreams", "DynamoDB\nStreams"),
            "sync": Node("aws.compute.Lambda", "sync Lambda\n(event source mapping)"),
            "cluster": Node("aws.database.Aurora", "Aurora\nsales_analytics"),
            "queue": Node("aws.integration.SQS", "SQS queue\n(on failure)"),
        },
        [
            Arrow("you", "table", "PutItem,\nUpdateItem"),
            Arrow("table", "stream", "change\nrecords"),
            Arrow("stream", "sync", "batches"),
            Arrow("sync", "cluster", "upsert (SQL)\nvia the Data API"),
            Arrow("sync", "queue", "records it\ngives up on"),
        ],
    ),
    "22_fargate_aurora_proxy": Pattern(
        {
            "you": Node("onprem.client.Client", "client\n(notebook)"),
            "alb": Node("aws.network.ALB", "Application\nLoad Balancer", "VPC"),
            "service": Node("aws.compute.Fargate", "ECS service\n(Fargate tasks)", "VPC"),
            "proxy": Node("aws.database.RDS", "RDS Proxy", "VPC"),
            "cluster": Node("aws.database.Aurora", "Aurora\nServerless v2", "VPC"),
            "secret": Node("aws.security.SecretsManager", "Secrets Manager\nsecret"),
        },
        [
            Arrow("you", "alb", "HTTP"),
            Arrow("alb", "service", "healthy\ntargets"),
            Arrow("service", "proxy", "SQL over\npooled connections"),
            Arrow("proxy", "cluster", "connections"),
            Arrow("secret", "service", "injected at\ntask start"),
        ],
    ),
    "23_elasticache_cache_aside": Pattern(
        {
            "you": NOTEBOOK,
            "function": Node("aws.compute.Lambda", "AWS Lambda\n(in the VPC)", "VPC"),
            "cache": Node(
                "aws.database.ElasticacheForRedis", "ElastiCache\nServerless (Redis)", "VPC"
            ),
            "proxy": Node("aws.database.RDS", "RDS Proxy", "VPC"),
            "cluster": Node("aws.database.Aurora", "Aurora\nServerless v2", "VPC"),
            "data_api": Node("aws.database.RDS", "RDS Data API\n(HTTPS)"),
        },
        [
            Arrow("you", "function", "invoke"),
            Arrow("function", "cache", "GET / SET with TTL\n(TLS, 6379)"),
            Arrow("function", "proxy", "MySQL on a miss\n(TLS, 3306)"),
            Arrow("proxy", "cluster", "pooled\nconnections"),
            Arrow("function", "data_api", "Data API: no route\nwithout a NAT gateway", "dashed"),
        ],
    ),
    "24_rest_api_postgres": Pattern(
        {
            "you": Node("onprem.client.Client", "client\n(notebook)"),
            "api": Node("aws.network.APIGateway", "API Gateway\nREST API"),
            "customers": Node("aws.compute.Lambda", "customers\nLambda"),
            "orders": Node("aws.compute.Lambda", "orders\nLambda"),
            "executor": Node("aws.compute.Lambda", "query-executor\nLambda", "VPC"),
            "database": Node("aws.database.RDSPostgresqlInstance", "RDS PostgreSQL", "VPC"),
            "secret": Node("aws.security.SecretsManager", "Secrets Manager\n(managed secret)"),
        },
        [
            Arrow("you", "api", "HTTPS"),
            Arrow("api", "customers", "AWS_PROXY\n/customers"),
            Arrow("api", "orders", "AWS_PROXY\n/orders"),
            Arrow("customers", "executor", "invoke\n(statement name\n+ params)"),
            Arrow("orders", "executor", "invoke\n(statement name\n+ params)"),
            Arrow("executor", "database", "PostgreSQL\n(TLS, 5432)"),
            Arrow("executor", "secret", "reads the secret\n(VPC endpoint)"),
        ],
    ),
}

# Graphviz settings: big enough labels to read when JupyterLab scales the image to its width.
_GRAPH = {"pad": "0.45", "nodesep": "0.4", "ranksep": "0.6", "splines": "spline", "dpi": "80"}
_NODE = {"fontsize": "14"}
_EDGE = {"fontsize": "14", "color": "#333333"}


def _icon(node: Node) -> type:
    """The `diagrams` class that draws a node's icon."""
    module, _, name = node.icon.rpartition(".")
    return getattr(importlib.import_module(f"diagrams.{module}"), name)


def draw(name: str, pattern: Pattern) -> Path:
    """Draw one pattern diagram with AWS's icons and save it as a PNG next to this file."""
    from diagrams import Cluster, Diagram, Edge

    path = HERE / name
    drawn = {}
    with Diagram(
        "",
        filename=str(path),
        outformat="png",
        show=False,
        direction="LR",
        graph_attr=_GRAPH,
        node_attr=_NODE,
        edge_attr=_EDGE,
    ):
        for key, node in pattern.nodes.items():
            if not node.group:
                drawn[key] = _icon(node)(node.label)
        for group in dict.fromkeys(node.group for node in pattern.nodes.values() if node.group):
            with Cluster(group):
                for key, node in pattern.nodes.items():
                    if node.group == group:
                        drawn[key] = _icon(node)(node.label)
        for arrow in pattern.arrows:
            drawn[arrow.start] >> Edge(label=arrow.label, style=arrow.style) >> drawn[arrow.end]
    return path.with_suffix(".png")


class Box(NamedTuple):
    """A labelled rectangle of the architecture diagram (a dashed frame when kind is "frame")."""

    x: float
    y: float
    width: float
    height: float
    label: str
    kind: str


# An arrow end: (box name, side of the box, fraction along that side from bottom or left).
End = tuple[str, str, float]


class Link(NamedTuple):
    """An arrow between two boxes, labelled at its middle unless `label_at` = (x, y, ha)."""

    start: End
    end: End
    label: str = ""
    label_at: tuple[float, float, str] | None = None
    style: str = "arc3"  # matplotlib connection style: straight, or "angle,..." for an elbow


ARCHITECTURE_SIZE = (21.2, 11.4)  # grid units; one unit is 0.6 inch in the image
ARCHITECTURE_BOXES: dict[str, Box] = {
    "daemon": Box(8.7, 0.3, 8.35, 10.85, "localcloud daemon: one process on 127.0.0.1", "frame"),
    "context": Box(8.9, 3.25, 7.0, 2.9, "CloudContext: every provider's self.cloud", "frame"),
    "notebook": Box(0.2, 9.2, 2.0, 1.2, "notebook\n(Jupyter kernel)", "you"),
    "helpers": Box(3.1, 9.2, 2.3, 1.2, "helpers/\ncourse SDK", "you"),
    "boto3": Box(6.3, 9.2, 1.6, 1.2, "boto3", "you"),
    "client": Box(3.1, 7.0, 2.3, 1.2, "localcloud/\nclient.py", "you"),
    "contracts": Box(
        0.2,
        3.2,
        5.7,
        2.7,
        "Import contracts (pyproject.toml, make lint)\n"
        "- helpers imports only localcloud.client\n"
        "- localcloud never imports helpers\n"
        "- only localcloud/motogateway imports moto\n"
        "- no import cycles",
        "note",
    ),
    "http_client": Box(3.1, 0.425, 2.3, 1.2, "HTTP client\n(notebook, curl)", "you"),
    "edge": Box(
        9.1,
        9.2,
        3.2,
        1.35,
        "edge: one endpoint\nSigV4 scope → service,\nprotocol → operation",
        "aws",
    ),
    "registry": Box(9.1, 7.0, 2.3, 1.3, "registry\nprovider for this\noperation?", "aws"),
    "providers": Box(
        13.1,
        7.0,
        3.7,
        1.65,
        "providers, one per service\nLambda · ECS · ELBv2\nAPI GW v2 · RDS · RDS Data\nCloudWatch",
        "aws",
    ),
    "gateway": Box(9.1, 4.6, 1.9, 1.0, "moto gateway", "context"),
    "metrics": Box(11.3, 4.6, 2.0, 1.0, "metric store\n+ publisher", "context"),
    "logs": Box(13.6, 4.6, 2.0, 1.0, "logs writer", "context"),
    "others": Box(11.3, 3.45, 2.0, 0.95, "other providers\n(by class)", "context"),
    "engine_manager": Box(13.6, 3.45, 2.0, 0.95, "engine\nmanager", "context"),
    "moto": Box(9.1, 1.9, 2.3, 1.0, "moto\ncontrol plane", "data"),
    "listeners": Box(
        9.1,
        0.5,
        7.6,
        1.05,
        "shared HTTP layer: ALB and HTTP API listeners,\neach on its own 127.0.0.1 port",
        "aws",
    ),
    "handlers": Box(
        17.6,
        8.6,
        3.4,
        1.9,
        "handler processes\nLambda workers\n(awslambdaric)\nECS task containers",
        "process",
    ),
    "engines": Box(
        17.6, 3.3, 2.8, 1.3, "engines: processes of\nMariaDB · PostgreSQL\nRedis", "process"
    ),
}
ARCHITECTURE_LINKS = [
    Link(("notebook", "right", 0.5), ("helpers", "left", 0.5), "import"),
    Link(("helpers", "right", 0.5), ("boto3", "left", 0.5), "clients"),
    Link(("boto3", "right", 0.6), ("edge", "left", 0.65), "AWS API\n(SigV4)"),
    Link(("helpers", "bottom", 0.5), ("client", "top", 0.5), "its only import\nof localcloud"),
    Link(
        ("client", "right", 0.5),
        ("edge", "left", 0.2),
        "up, down,\n/_localcloud/ API",
        label_at=(7.7, 7.95, "center"),
    ),
    Link(("edge", "bottom", 0.3), ("registry", "top", 0.42), "service,\noperation"),
    Link(("registry", "right", 0.5), ("providers", "left", 0.39), "Operation(\nparams,\ncontext)"),
    Link(
        ("registry", "bottom", 0.4),
        ("gateway", "top", 0.5),
        "no provider:\nfall through",
        label_at=(10.1, 6.6, "left"),
    ),
    Link(("gateway", "bottom", 0.5), ("moto", "top", 0.435), "in process"),
    Link(("providers", "bottom", 0.3), ("context", "top", 0.757), "self.cloud"),
    Link(
        ("providers", "bottom", 0.892),
        ("listeners", "top", 0.9605),
        "one per\nALB / API",
        label_at=(16.3, 6.6, "right"),
    ),
    Link(
        ("providers", "right", 0.65),
        ("handlers", "left", 0.2),
        "start,\ninvoke",
        label_at=(17.15, 7.85, "left"),
    ),
    Link(
        ("handlers", "left", 0.8),
        ("edge", "right", 0.7),
        "the handler's own AWS calls\n(AWS_ENDPOINT_URL = the edge)",
    ),
    Link(
        ("engine_manager", "right", 0.5),
        ("engines", "left", 0.5),
        "start,\nstop",
        label_at=(16.55, 4.3, "left"),
    ),
    Link(("http_client", "right", 0.5), ("listeners", "left", 0.5), "HTTP to\n127.0.0.1:port"),
    Link(
        ("listeners", "right", 0.5),
        ("handlers", "bottom", 0.94),
        "ALB forwards\nto tasks;\nHTTP API\nproxies or\ninvokes",
        label_at=(20.65, 6.6, "right"),
        style="angle,angleA=0,angleB=90",
    ),
]


def _point(end: End) -> tuple[float, float]:
    """Where an arrow end touches its box."""
    name, side, fraction = end
    box = ARCHITECTURE_BOXES[name]
    if side in ("left", "right"):
        x = box.x if side == "left" else box.x + box.width
        return x, box.y + fraction * box.height
    y = box.y if side == "bottom" else box.y + box.height
    return box.x + fraction * box.width, y


def _draw_box(axes: plt.Axes, box: Box) -> None:
    """One box (or frame) with its label."""
    frame = box.kind == "frame"
    axes.add_patch(
        FancyBboxPatch(
            (box.x, box.y),
            box.width,
            box.height,
            boxstyle="round,pad=0.05",
            facecolor="none" if frame else COLOURS[box.kind],
            edgecolor="#888888" if frame else "#555555",
            linestyle="--" if frame else "-",
        )
    )
    if frame:  # the title sits in the top-left corner
        axes.text(box.x + 0.12, box.y + box.height - 0.12, box.label, va="top", fontsize=9.5)
    elif box.kind == "note":
        middle = box.y + box.height / 2
        axes.text(box.x + 0.2, middle, box.label, va="center", fontsize=9.5, linespacing=1.6)
    else:
        centre = (box.x + box.width / 2, box.y + box.height / 2)
        axes.text(*centre, box.label, ha="center", va="center", fontsize=9.5)


def _draw_link(axes: plt.Axes, link: Link) -> None:
    """One arrow with its label: above it when horizontal, right of it when vertical."""
    (x0, y0), (x1, y1) = _point(link.start), _point(link.end)
    axes.add_patch(
        FancyArrowPatch(
            (x0, y0),
            (x1, y1),
            arrowstyle="-|>",
            mutation_scale=14,
            color="#333333",
            connectionstyle=link.style,
            shrinkA=0,
            shrinkB=0,
        )
    )
    if link.label_at is not None:
        x, y, align = link.label_at
        axes.text(x, y, link.label, ha=align, va="center", fontsize=8.5)
    elif abs(x1 - x0) >= abs(y1 - y0):
        middle = ((x0 + x1) / 2, (y0 + y1) / 2 + 0.08)
        axes.text(*middle, link.label, ha="center", va="bottom", fontsize=8.5)
    else:
        middle = ((x0 + x1) / 2 + 0.1, (y0 + y1) / 2)
        axes.text(*middle, link.label, ha="left", va="center", fontsize=8.5)


def draw_architecture() -> Path:
    """Draw the repository's architecture (docs/architecture.md) and save it as a PNG."""
    width, height = ARCHITECTURE_SIZE
    figure, axes = plt.subplots(figsize=(width * 0.6, height * 0.6))
    figure.subplots_adjust(left=0, right=1, bottom=0, top=1)
    axes.set_xlim(0, width)
    axes.set_ylim(0, height)
    axes.axis("off")
    for box in ARCHITECTURE_BOXES.values():
        _draw_box(axes, box)
    for link in ARCHITECTURE_LINKS:
        _draw_link(axes, link)
    path = HERE / "architecture.png"
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


if __name__ == "__main__":
    for diagram, pattern in PATTERNS.items():
        print(draw(diagram, pattern).relative_to(HERE.parent))
    print(draw_architecture().relative_to(HERE.parent))
