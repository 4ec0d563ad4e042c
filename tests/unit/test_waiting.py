"""Waiting: returns the first truthy result; a timeout names the wait and the way forward."""

import pytest

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
