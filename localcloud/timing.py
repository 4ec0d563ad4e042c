"""The AWS timing profile: AWS's consistency and latency rules that code must tolerate.

By default the local cloud answers at once and is consistent at once, which is what makes it
quick, and also what lets a notebook pass locally that would stop on AWS: a role used a second
after it was created, a metric read a second after it was published. With the profile on
(`python -m localcloud up --timing aws`, or LOCALCLOUD_TIMING=aws), providers apply the rules
below, each delay multiplied by LOCALCLOUD_TIMING_SCALE (default 0.2) so a run stays short:

- An IAM role cannot be assumed by Lambda or ECS for 10 s (IAM_PROPAGATION_S) after it was
  created: IAM is eventually consistent
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
- The first ECS CreateCluster or RunTask of an account fails while ECS creates its
  service-linked role, as in a new AWS account
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using-service-linked-roles.html).
- CloudWatch data become readable 60 s (METRIC_INGESTION_S) after they arrive: AWS's service
  metrics arrive a minute or more after what they measure (reported behaviour). The delay of
  up to 15 minutes before a new metric appears in ListMetrics
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html)
  is not applied.
- A new API Gateway stage answers 404 for 10 s (API_STAGE_READY_S), as a stage just created
  can (reported behaviour).

Each rule is listed on the coverage page with the provider that applies it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

IAM_PROPAGATION_S = 10.0
METRIC_INGESTION_S = 60.0
API_STAGE_READY_S = 10.0
DEFAULT_SCALE = 0.2
PROFILES = ("local", "aws")


@dataclass(frozen=True)
class TimingProfile:
    """Which timing rules apply, and how AWS's delays are scaled."""

    name: str = "local"
    scale: float = DEFAULT_SCALE

    @property
    def aws(self) -> bool:
        """True when AWS's consistency and latency rules apply."""
        return self.name == "aws"

    def delay(self, aws_seconds: float) -> float:
        """A delay AWS has, as the local cloud applies it (0 unless the profile is on)."""
        return aws_seconds * self.scale if self.aws else 0.0

    def describe(self) -> str:
        """'local', or 'aws x0.2'."""
        return f"aws x{self.scale:g}" if self.aws else "local"


def timing_profile() -> TimingProfile:
    """The profile the environment asks for (LOCALCLOUD_TIMING, LOCALCLOUD_TIMING_SCALE)."""
    name = os.environ.get("LOCALCLOUD_TIMING", "local") or "local"
    if name not in PROFILES:
        raise ValueError(f"LOCALCLOUD_TIMING must be one of {', '.join(PROFILES)}, not {name!r}")
    text = os.environ.get("LOCALCLOUD_TIMING_SCALE", "") or str(DEFAULT_SCALE)
    try:
        scale = float(text)
    except ValueError:
        scale = -1.0
    if not 0 < scale <= 1:
        raise ValueError(f"LOCALCLOUD_TIMING_SCALE must be a number in (0, 1], not {text!r}")
    return TimingProfile(name, scale)
