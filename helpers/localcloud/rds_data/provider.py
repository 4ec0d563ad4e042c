"""The Data API provider (being written)."""

from ..registry import Provider


class RdsDataProvider(Provider):
    """Placeholder: no operation served yet."""

    service = "rds-data"
