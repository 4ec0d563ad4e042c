"""Fargate task sizes: AWS's valid cpu/memory pairs, checked at RegisterTaskDefinition.

`cpu` may be given in CPU units ("256") or vCPUs ("1 vCPU", "0.25 vcpu") and `memory` in
MiB ("2048") or GB ("2 GB", "2GB"); both are stored as integers in strings, as AWS converts
them when the task definition is registered. The pairs and messages are AWS's:
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-cpu-memory-error.html
"""

from __future__ import annotations

import re
from typing import Any

from ..protocols import ServiceError

GIB = 1024


def _steps(low_gib: int, high_gib: int, step_gib: int) -> frozenset[int]:
    return frozenset(range(low_gib * GIB, high_gib * GIB + 1, step_gib * GIB))


# CPU units -> the memory sizes (MiB) Fargate offers with them (Linux).
FARGATE_SIZES: dict[int, frozenset[int]] = {
    256: frozenset({512, 1024, 2048}),
    512: _steps(1, 4, 1),
    1024: _steps(2, 8, 1),
    2048: _steps(4, 16, 1),
    4096: _steps(8, 30, 1),
    8192: _steps(16, 60, 4),
    16384: _steps(32, 120, 8),
}
_AMOUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def _units(value: Any, unit_words: tuple[str, ...], field: str) -> int | None:
    """An integer amount from "1024" or "1 vCPU" / "1 GB"; None when absent."""
    if value is None or value == "":
        return None
    match = _AMOUNT.match(str(value))
    if match is None:
        raise _client_error(f"Invalid '{field}' setting for task.")
    number, unit = float(match.group(1)), match.group(2).lower()
    if unit in unit_words:
        number *= 1024
    elif unit or not number.is_integer():
        raise _client_error(f"Invalid '{field}' setting for task.")
    return int(number)


def normalised_size(params: dict[str, Any]) -> dict[str, Any]:
    """RegisterTaskDefinition's params with cpu/memory as integer strings, checked for Fargate."""
    cpu = _units(params.get("cpu"), ("vcpu",), "cpu")
    memory = _units(params.get("memory"), ("gb",), "memory")
    params = dict(params)
    if cpu is not None:
        params["cpu"] = str(cpu)
    if memory is not None:
        params["memory"] = str(memory)
    if "FARGATE" not in (params.get("requiresCompatibilities") or []):
        return params
    if params.get("networkMode") != "awsvpc":
        raise _client_error("Fargate only supports network mode 'awsvpc'.")
    if cpu is None:
        raise _client_error("Fargate requires that 'cpu' be defined at the task level.")
    if memory is None:
        raise _client_error("Fargate requires that 'memory' be defined at the task level.")
    if memory not in FARGATE_SIZES.get(cpu, frozenset()):
        raise _client_error(
            f"No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. "
            "See the Amazon ECS documentation for the valid values."
        )
    return params


def _client_error(message: str) -> ServiceError:
    return ServiceError("ClientException", message, 400)
