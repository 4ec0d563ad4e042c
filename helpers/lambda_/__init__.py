"""Lambda for the course: functions (`functions.py`) and event source mappings (`event_sources.py`).

Functions: deploy (zip folder or ECR image), invoke, read REPORT lines.

`ensure_function` is get-or-create and converges: a re-run with the same code and settings
changes nothing, changed code or settings are updated in the order AWS allows (code, wait,
configuration, wait). `invoke` returns function errors as data so a notebook can assert on
them; service errors raise as botocore raises them.
"""

from .event_sources import MAPPING_KIND, ensure_event_source_mapping, log_lines
from .functions import (
    KIND,
    PRICES,
    REPORT_COLUMNS,
    Invocation,
    burst,
    code_sha256,
    cold_and_warm,
    ensure_function,
    invoke,
    package_zip,
    report_lines,
)

__all__ = [
    "KIND",
    "MAPPING_KIND",
    "PRICES",
    "REPORT_COLUMNS",
    "Invocation",
    "burst",
    "code_sha256",
    "cold_and_warm",
    "ensure_event_source_mapping",
    "ensure_function",
    "invoke",
    "log_lines",
    "package_zip",
    "report_lines",
]
