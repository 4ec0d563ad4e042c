"""The RDS provider (being written)."""

from ..registry import Provider


class RdsProvider(Provider):
    """Placeholder: every RDS operation still goes to moto."""

    service = "rds"
