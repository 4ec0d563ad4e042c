"""Waiting: returns the first truthy result; a timeout names the wait and the way forward.

Also the pacing of both backends that the waits read from `lab.pace`.
"""

import pytest

from helpers.pacing import AWS, LOCAL, Wait
from helpers.waiting import WaitTimeout, wait_for


def test_returns_the_first_truthy_result_and_reports_the_time(capsys):
    answers = iter([None, None, {"Status": "available"}])
    result = wait_for(lambda: next(answers), what="cluster", timeout=5, interval=0.01)
    assert result == {"Status": "available"}
    assert "cluster: done in" in capsys.readouterr().out


def test_timeout_says_what_and_how_long_and_what_to_do():
    with pytest.raises(WaitTimeout) as raised:
        wait_for(
            lambda: None,
            what="proxy target",
            timeout=0.2,
            estimate=60,
            interval=0.05,
            hint="Look at describe_db_proxy_targets.",
        )
    message = str(raised.value)
    assert message.startswith("proxy target: not done after 0 s (usually about 60 s).")
    assert message.endswith("Look at describe_db_proxy_targets.")


def test_a_pace_gives_estimate_interval_and_a_default_timeout():
    pace = Wait(estimate=60, interval=0.01, timeout=0.05)
    with pytest.raises(WaitTimeout, match=r"not done after 0 s \(usually about 60 s\)"):
        wait_for(lambda: None, what="cluster", pace=pace)
    answers = iter([None, "ready"])
    assert wait_for(lambda: next(answers), what="x", timeout=5, pace=pace) == "ready"
    with pytest.raises(TypeError, match="needs a timeout"):
        wait_for(lambda: None, what="x", pace=Wait(estimate=1, interval=0.01))


def test_both_backends_pace_every_wait_and_local_is_never_slower():
    for name, local in vars(LOCAL).items():
        on_aws = getattr(AWS, name)
        if isinstance(local, Wait):
            assert local.estimate <= on_aws.estimate and local.interval <= on_aws.interval, name
        else:
            assert local <= on_aws, name
