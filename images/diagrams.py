"""Architecture diagrams, drawn from code: `python images/diagrams.py` (or `make diagrams`).

Each pattern diagram is a row of boxes (AWS services and the student's side) joined by
labelled arrows, saved as `images/<notebook>.png`. Change a pattern, change its entry here,
re-run. The repository's own architecture (`docs/architecture.md`) is one larger diagram,
`images/architecture.png`, laid out on a grid below.
"""

from __future__ import annotations

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

# name -> (boxes: (label, kind), arrows: (from, to, label))
DIAGRAMS: dict[str, tuple[list[tuple[str, str]], list[tuple[int, int, str]]]] = {
    "16_container_lambda": (
        [
            ("notebook\n(%%writefile, build)", "you"),
            ("Amazon ECR\nrepository", "aws"),
            ("AWS Lambda\n(image function)", "aws"),
            ("CloudWatch\nLogs + metrics", "data"),
        ],
        [(0, 1, "push image"), (1, 2, "image URI\n@digest"), (2, 3, "REPORT lines,\nDuration")],
    ),
    "17_fargate_batch_task": (
        [
            ("notebook\n(%%writefile, build)", "you"),
            ("Amazon ECR\nrepository", "aws"),
            ("ECS on Fargate\n(one task)", "aws"),
            ("S3 bucket\n+ CloudWatch Logs", "data"),
        ],
        [(0, 1, "push image"), (1, 2, "run_task"), (2, 3, "result JSON,\nlog lines")],
    ),
    "18_fargate_http_service": (
        [
            ("client\n(notebook)", "you"),
            ("API Gateway\nHTTP API", "aws"),
            ("Application\nLoad Balancer", "aws"),
            ("ECS service\n(2 Fargate tasks)", "aws"),
            ("DynamoDB\norders table", "data"),
        ],
        [
            (0, 1, "HTTPS"),
            (1, 2, "HTTP_PROXY"),
            (2, 3, "healthy\ntargets"),
            (3, 4, "PutItem,\nGetItem, Scan"),
        ],
    ),
    "19_aurora_data_api": (
        [
            ("notebook", "you"),
            ("AWS Lambda\n(ZIP function)", "aws"),
            ("RDS Data API\n(HTTPS)", "aws"),
            ("Aurora Serverless v2\nMySQL, 0-4 ACU", "data"),
        ],
        [(0, 1, "invoke"), (1, 2, "ExecuteStatement\n+ secret ARN"), (2, 3, "SQL")],
    ),
}


def draw(name: str, boxes: list[tuple[str, str]], arrows: list[tuple[int, int, str]]) -> Path:
    """Draw one diagram and save it as a PNG next to this file."""
    width = 3.0 * len(boxes) - 0.8
    figure, axes = plt.subplots(figsize=(width, 1.9))
    axes.set_xlim(0, width)
    axes.set_ylim(0, 1.9)
    axes.axis("off")
    centres = []
    for index, (label, kind) in enumerate(boxes):
        x = 0.2 + index * 3.0
        axes.add_patch(
            FancyBboxPatch(
                (x, 0.45),
                1.8,
                1.0,
                boxstyle="round,pad=0.05",
                facecolor=COLOURS[kind],
                edgecolor="#555555",
            )
        )
        axes.text(x + 0.9, 0.95, label, ha="center", va="center", fontsize=9)
        centres.append(x + 0.9)
    for start, end, label in arrows:
        x0, x1 = centres[start] + 0.95, centres[end] - 0.95
        axes.add_patch(
            FancyArrowPatch(
                (x0, 0.95), (x1, 0.95), arrowstyle="-|>", mutation_scale=14, color="#333333"
            )
        )
        axes.text((x0 + x1) / 2, 1.02, label, ha="center", va="bottom", fontsize=7.5)
    path = HERE / f"{name}.png"
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


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
    for diagram, (boxes, arrows) in DIAGRAMS.items():
        print(draw(diagram, boxes, arrows))
    print(draw_architecture())
