"""The local cloud: an AWS look-alike on 127.0.0.1 (moto control plane, course data plane).

Start and stop it with `python -m helpers.localcloud up|down`; `helpers.connect("local")`
starts it on demand.
"""

from __future__ import annotations


def status_report() -> str:
    """The local cloud's services, engines and course resources, as printed tables."""
    from . import daemon

    return daemon.status_text(daemon.status())
