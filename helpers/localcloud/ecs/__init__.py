"""The ECS provider: Fargate tasks run as local processes (see provider.py)."""

from .provider import EcsProvider

__all__ = ["EcsProvider"]
