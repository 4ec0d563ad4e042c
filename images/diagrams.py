"""Architecture diagrams of the patterns, drawn from code: `python images/diagrams.py`.

Each diagram is a row of boxes (AWS services and the student's side) joined by labelled
arrows, saved as `images/<notebook>.png`. Change a pattern, change its entry here, re-run.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

HERE = Path(__file__).resolve().parent
COLOURS = {"you": "#e8eef7", "aws": "#fff4e0", "data": "#e6f4ea"}

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


if __name__ == "__main__":
    for diagram, (boxes, arrows) in DIAGRAMS.items():
        print(draw(diagram, boxes, arrows))
