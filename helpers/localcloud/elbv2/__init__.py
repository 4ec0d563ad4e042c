"""Local Application Load Balancers: listeners on 127.0.0.1, health checks, routing, metrics."""

from .provider import ElbV2Provider

__all__ = ["ElbV2Provider"]
