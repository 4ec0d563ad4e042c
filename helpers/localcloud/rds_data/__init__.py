"""The RDS Data API on the local clusters' MariaDB servers (being written)."""

from .provider import RdsDataProvider

__all__ = ["RdsDataProvider"]
