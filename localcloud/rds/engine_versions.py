"""DescribeDBEngineVersions for Aurora MySQL 3 and PostgreSQL, which moto does not implement.

The catalogue lists Aurora MySQL 3 releases from AWS's release notes with the Serverless v2
limits that `ServerlessV2FeaturesSupport` reports: MinCapacity 0 (auto-pause) from 3.08.0 on,
MaxCapacity 256 on recent versions and 128 on older ones; and RDS for PostgreSQL releases of
the majors 13 to 17 (https://docs.aws.amazon.com/AmazonRDS/latest/PostgreSQLReleaseNotes/postgresql-versions.html).
Every version is served by the same local MariaDB or PostgreSQL, whatever it says here.
DefaultOnly gives each engine's newest version: RDS's default is "usually the latest".
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


# RDS for PostgreSQL releases, oldest first; the last of each major is its newest.
_POSTGRES = ["13.21", "13.22", "14.18", "14.19", "15.13", "15.14", "16.9", "16.10", "17.5", "17.6"]


def _postgres_entry(version: str) -> dict[str, Any]:
    """One RDS for PostgreSQL DBEngineVersion of the catalogue."""
    major = version.split(".")[0]
    return {
        "Engine": "postgres",
        "EngineVersion": version,
        "MajorEngineVersion": major,
        "DBParameterGroupFamily": f"postgres{major}",
        "DBEngineDescription": "PostgreSQL",
        "DBEngineVersionDescription": f"PostgreSQL {version}-R1",
        "Status": "available",
        "SupportsLogExportsToCloudwatchLogs": True,
        "ExportableLogTypes": ["postgresql", "upgrade"],
        "SupportedEngineModes": ["provisioned"],
    }


CATALOGUE = [_entry(aurora, mysql) for aurora, mysql in _AURORA_MYSQL]
CATALOGUE += [_postgres_entry(version) for version in _POSTGRES]


def newest_postgres() -> dict[int, str]:
    """Each PostgreSQL major with its newest minor version in the catalogue."""
    return {int(v.split(".")[0]): v for v in _POSTGRES}


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
    if params.get("DefaultOnly"):
        # The newest of each engine stands in for AWS's default version.
        found = [
            v
            for i, v in enumerate(found)
            if v["Engine"] not in {w["Engine"] for w in found[i + 1 :]}
        ]
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
