"""The ELBv2 provider (placeholder until the local ALB lands).

Where the local cloud differs from AWS:
- Nothing is served locally yet: every ELBv2 operation is moto's.
"""

from __future__ import annotations

from ..registry import Provider


class ElbV2Provider(Provider):
    """Local ALB data plane."""

    service = "elbv2"
