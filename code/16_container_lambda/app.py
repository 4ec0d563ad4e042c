"""Pattern 16: a Lambda function packaged as a container image.

Actions: "info" describes the environment the code runs in; "process" computes
statistics of a list of numbers with numpy, installed into the image by its Dockerfile.
"""

import json
import platform
import sys

import numpy as np

ACTIONS = ("info", "process")


def handler(event, context):
    """Route the event to an action; bad input gets a 400 with the reason."""
    if not isinstance(event, dict):
        return _response(400, {"error": "the event must be a JSON object like {'action': 'info'}"})
    action = event.get("action", "info")
    if action == "info":
        return _response(200, _info(context))
    if action == "process":
        problem = _check_data(event.get("data"))
        if problem:
            return _response(400, {"error": problem})
        return _response(200, _statistics(event["data"]))
    return _response(400, {"error": f"unknown action {action!r}: use one of {', '.join(ACTIONS)}"})


def _info(context):
    """Where this code runs: Python, platform, numpy, and the memory Lambda gave it."""
    return {
        "message": "Running from a container image",
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "architecture": platform.machine(),
        "numpy": np.__version__,
        "memory_mb": int(context.memory_limit_in_mb),
    }


def _check_data(data):
    """Why `data` cannot be processed, or None when it can."""
    if not isinstance(data, list) or not data:
        return "data must be a non-empty list of numbers, e.g. [10, 25, 8]"
    # bool is a subclass of int in Python, but true/false are not measurements.
    not_numbers = [v for v in data if isinstance(v, bool) or not isinstance(v, (int, float))]
    if not_numbers:
        return f"data must contain only numbers; these are not: {not_numbers[:3]}"
    return None


def _statistics(data):
    """Count, sum, mean, standard deviation, minimum and maximum."""
    values = np.asarray(data, dtype=float)
    return {
        "count": int(values.size),
        "sum": float(values.sum()),
        "mean": round(float(values.mean()), 4),
        "std": round(float(values.std()), 4),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def _response(status, body):
    """A response in the shape API Gateway expects: a status code and a JSON body."""
    return {"statusCode": status, "body": json.dumps(body)}
