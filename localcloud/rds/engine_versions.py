"""DescribeDBEngineVersions for Aurora MySQL 3, which moto does not implement (HTTP 500).

The catalogue lists Aurora MySQL 3 releases from AWS's release notes with the Serverless v2
limits that `ServerlessV2FeaturesSupport` reports: MinCapacity 0 (auto-pause) from 3.08.0 on,
MaxCapacity 256 on recent versions and 128 on older ones. Every version is served by the same
local MariaDB, whatever it says here.
"""

from __future__ import annotations

from typing import Any

from .state import ENGINE, invalid

# (Aurora MySQL version, compatible MySQL version), oldest first.
_AURORA_MYSQL = [
    ("3.04.4", "8.0.28"),
    ("3.05.2", "8.0.32"),
    ("3.06.1", "8.0.34"),
    ("3.07.1", "8.0.36"),
    ("3.08.0", "8.0.39"),
    ("3.08.1", "8.0.39"),
    ("3.08.2", "8.0.39"),
    ("3.09.0", "8.0.40"),
    ("3.10.0", "8.0.42"),
]


def _entry(aurora: str, mysql: str) -> dict[str, Any]:
    """One DBEngineVersion of the catalogue."""
    key = tuple(int(p) for p in aurora.split("."))
    return {
        "Engine": ENGINE,
        "EngineVersion": f"8.0.mysql_aurora.{aurora}",
        "MajorEngineVersion": "8.0",
        "DBParameterGroupFamily": "aurora-mysql8.0",
        "DBEngineDescription": "Aurora MySQL",
        "DBEngineVersionDescription": f"Aurora MySQL {aurora} (compatible with MySQL {mysql})",
        "Status": "available",
        "SupportedEngineModes": ["provisioned"],
        "ServerlessV2FeaturesSupport": {
            "MinCapacity": 0.0 if key >= (3, 8, 0) else 0.5,
            "MaxCapacity": 256.0 if key >= (3, 6, 0) else 128.0,
        },
    }


CATALOGUE = [_entry(aurora, mysql) for aurora, mysql in _AURORA_MYSQL]


def describe(params: dict[str, Any]) -> dict[str, Any]:
    """The DescribeDBEngineVersions answer for the request's filters, one page at a time."""
    engine = params.get("Engine")
    version = params.get("EngineVersion")
    family = params.get("DBParameterGroupFamily")
    found = [
        v
        for v in CATALOGUE
        if (not engine or v["Engine"] == engine)
        and (not version or v["EngineVersion"] == version or v["MajorEngineVersion"] == version)
        and (not family or v["DBParameterGroupFamily"] == family)
    ]
    if params.get("DefaultOnly") and found:
        found = found[-1:]  # the newest stands in for AWS's default version
    page_size = params.get("MaxRecords") or 100
    if not 20 <= page_size <= 100:
        raise invalid("Invalid value for MaxRecords. Must be between 20 and 100")
    try:
        start = int(params.get("Marker") or 0)
    except ValueError:
        raise invalid("Invalid marker.") from None
    result: dict[str, Any] = {"DBEngineVersions": found[start : start + page_size]}
    if start + page_size < len(found):
        result["Marker"] = str(start + page_size)
    return result
