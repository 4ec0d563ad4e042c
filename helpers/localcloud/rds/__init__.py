"""Local Aurora: each cluster a private MariaDB server (being written)."""

from .provider import RdsProvider

__all__ = ["RdsProvider"]
