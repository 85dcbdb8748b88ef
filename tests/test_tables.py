"""Leaderboard number formatting."""

import math

from harness.tables import format_value


def test_format_value():
    assert format_value(16384.0, 0.0) == "16384"
    assert format_value(0.52971, 0.0) == "0.5297"
    assert format_value(0.0090, 0.0028) == "0.0090 ± 0.0028"
    assert format_value(2.0, 0.5) == "2.0000 ± 0.5000"
    assert format_value(0.5, math.nan) == "0.5000"
