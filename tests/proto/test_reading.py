"""How long a reader of the event stream waits, and when it stops."""

from __future__ import annotations

import pytest

from tradeforge_proto.realtime.reading import ReadWindow


def test_an_idle_limit_alone_waits_that_long_each_time_and_never_ends_by_itself() -> None:
    window = ReadWindow.start(5.0, None, now=100.0)
    assert window.wait(now=1e9) == 5.0
    assert not window.over(now=1e9)


def test_a_duration_caps_each_wait_and_ends_the_read() -> None:
    window = ReadWindow.start(None, 10.0, now=100.0)
    assert window.wait(now=104.0) == 6.0
    assert not window.over(now=109.9)
    assert window.over(now=110.0)
    both = ReadWindow.start(2.0, 10.0, now=100.0)
    assert both.wait(now=101.0) == 2.0
    assert both.wait(now=109.0) == 1.0


def test_no_limit_at_all_waits_without_one() -> None:
    assert ReadWindow.start(None, None, now=0.0).wait(now=5.0) is None


def test_the_former_name_still_works_and_warns() -> None:
    with pytest.warns(DeprecationWarning, match="idle_timeout"):
        window = ReadWindow.start(None, None, now=0.0, timeout=3.0)
    assert window.wait(now=1.0) == 3.0
