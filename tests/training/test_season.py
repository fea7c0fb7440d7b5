"""The season factor: the latest year's ratio, moved by half its year-on-year change (hand-computed)."""

import pandas as pd
import pytest

from training.season import damped_trend, same_season_cutoffs


def test_one_year_gives_its_own_ratio():
    assert damped_trend([1.7]) == 1.7


def test_two_years_follow_half_the_change_in_log_scale():
    # 2.2 * sqrt(2.2 / 3.4) = 2.2 * 0.804400 = 1.769679
    assert damped_trend([2.2, 3.4]) == pytest.approx(1.769679, abs=1e-6)
    assert damped_trend([0.5, 0.5, 9.0]) == 0.5  # no change in the latest year: no trend, older years ignored


def test_same_season_cutoffs_are_whole_52_week_years_with_enough_history():
    cutoffs = same_season_cutoffs(as_of=pd.Timestamp("2026-03-31"), first_day=pd.Timestamp("2024-01-01"),
                                  min_history_days=56)
    assert cutoffs == [pd.Timestamp("2025-04-01"), pd.Timestamp("2024-04-02")]
