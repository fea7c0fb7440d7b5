"""The season factor: the latest year's ratio, moved by half its year-on-year change when the model of the year
before had seen every other season (hand-computed)."""

import numpy as np
import pandas as pd
import pytest

from churnclv.contract.dates import SEASON_YEAR_DAYS, until
from churnclv.features import build_features
from churnclv.scoring.clock import Clock, ClockedBGNBD
from churnclv.scoring.snapshot import with_clv
from churnclv.seeds.generate import make_seed_transactions
from churnclv.training.clock import fit_on_clock
from churnclv.training.clv import CLVModel
from churnclv.training.season import (
    damped_trend,
    same_season_cutoffs,
    season_ahead,
    season_cutoffs,
    season_of,
    season_on_clock,
)


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


def _window(cutoff: str, actual: int, forecast: float) -> dict:
    return {"cutoff": cutoff, "actual": actual, "forecast": forecast}


def test_the_trend_needs_a_full_year_of_history_behind_the_year_before():
    latest, before = _window("2025-10-01", 229, 100.0), _window("2024-10-02", 978, 100.0)
    # the year before had 185 days of history (from 2024-03-31), fewer than 364 - 90 = 274: its 9.78 is the
    # base's youth, not the season
    young = season_of([latest, before], horizon_days=90, first_day=pd.Timestamp("2024-03-31"))
    assert young.factor == pytest.approx(2.29) and "trend" not in young.note
    # with 274 days behind it, the trend counts: 2.29 * sqrt(2.29 / 9.78) = 2.29 * 0.483892 = 1.108112
    mature = season_of([latest, before], horizon_days=90, first_day=pd.Timestamp("2024-01-02"))
    assert mature.factor == pytest.approx(1.108112, abs=1e-6) and "ratio 9.78 a year before" in mature.note


def test_windows_with_too_few_purchases_are_left_out_said_so_and_the_factor_is_bounded():
    few = season_of([_window("2025-10-01", 29, 10.0)], horizon_days=90, first_day=pd.Timestamp("2023-01-01"))
    assert not few.windows and few.factor == 1.0
    assert few.note == ("season ahead: not adjusted, the same window a year earlier (2025-10-01 + 90 days) held 29 "
                        "purchases against a forecast of 10, too few to measure it (needs 30)")
    assert season_of([_window("2025-10-01", 600, 10.0)], horizon_days=90,
                     first_day=pd.Timestamp("2023-01-01")).factor == 5.0


def test_a_ratio_measured_on_a_base_younger_than_a_year_is_said_to_be_uncertain():
    window = [_window("2024-11-01", 202, 55.0)]  # a donor base 300 days old at the window a year earlier
    young = season_of(window, horizon_days=90, first_day=pd.Timestamp("2024-11-01") - pd.Timedelta(days=300))
    assert young.factor == pytest.approx(202 / 55)
    assert "measured on a base 300 days old, whose ratio mixes its youth with the season: uncertain" in young.note
    old = season_of(window, horizon_days=90, first_day=pd.Timestamp("2024-11-01") - pd.Timedelta(days=364))
    assert "uncertain" not in old.note


def test_a_quiet_window_a_year_earlier_measures_the_season_when_the_forecast_was_large():
    # a donor base between its giving weeks: BG/NBD expected 300 purchases, 7 happened -> 7 / 300 = 0.023333
    quiet = season_of([_window("2024-01-30", 7, 300.0)], horizon_days=90, first_day=pd.Timestamp("2022-01-01"))
    assert quiet.factor == pytest.approx(7 / 300) and "measured on 7 purchases, ±38%" in quiet.note
    none = season_of([_window("2024-01-30", 0, 300.0)], horizon_days=90, first_day=pd.Timestamp("2022-01-01"))
    assert none.factor == 0.02  # half a purchase / 300 = 0.0017, held at the floor


def test_a_horizon_over_52_weeks_is_not_adjusted_and_reads_nothing_after_as_of(seed_transactions):
    """Its window a year earlier would run past the as-of day, where the rows are cut: the count would be
    short and the factor too low."""
    as_of = pd.Timestamp("2025-12-31")
    long = season_ahead(until(seed_transactions, as_of), as_of=as_of, horizon_days=400, min_history_days=56,
                        clv_model=CLVModel)
    assert long.factor == 1.0 and "400-day horizon covers every season" in long.note


def test_a_log_without_a_season_measures_its_factor_on_the_horizon_before_the_as_of_day():
    as_of, first = pd.Timestamp("2026-03-31"), pd.Timestamp("2024-01-01")
    plan = dict(as_of=as_of, first_day=first, horizon_days=90, min_history_days=56)
    assert season_cutoffs(**plan, flat=True) == [pd.Timestamp("2025-12-31")]
    assert season_cutoffs(**plan, flat=False) == same_season_cutoffs(as_of=as_of, first_day=first, min_history_days=56)
    assert season_cutoffs(**(plan | {"horizon_days": 400}), flat=True) is None  # a horizon that holds every season
    flat = season_of([_window("2025-12-31", 1748, 1483.0)], horizon_days=90, first_day=first, flat=True)
    assert flat.factor == pytest.approx(1748 / 1483)  # 1.178692
    assert flat.note == ("season ahead: forecast x 1.18, from the horizon before the as-of day (the log's months show "
                         "no season) (2025-12-31 + 90 days: 1,748 purchases, BG/NBD forecast 1,483, ratio 1.18)")
    few = season_of([_window("2025-12-31", 20, 25.0)], horizon_days=90, first_day=first, flat=True)
    assert few.factor == 1.0 and few.note.startswith("season ahead: not adjusted, the horizon before the as-of day")


def _clock_case():
    """The seed log two years in (as of 2025-12-31: the window a year earlier starts on a base a year old), its
    calendar Season, and BG/NBD on a clock that does not move (every month's rate 1), which is the calendar's."""
    tx = make_seed_transactions(800, seed=5)
    as_of, first = pd.Timestamp("2025-12-31"), tx["timestamp"].min().normalize()

    def features(cutoff):
        table = build_features(tx, as_of=cutoff)
        return with_clv(table, clv=CLVModel().fit(table), horizon_days=90)

    now = features(as_of)
    season = season_ahead(until(tx, as_of), as_of=as_of, horizon_days=90, min_history_days=56, clv_model=CLVModel)
    clocked = fit_on_clock(Clock((1.0,) * 12), now, as_of=as_of, clv_model=CLVModel)
    return season, clocked, now, features, as_of, first


def test_on_a_clock_that_does_not_move_the_factor_is_the_calendar_s_ratio_a_year_earlier():
    season, clocked, now, features, as_of, first = _clock_case()
    assert len(season.windows) == 1  # one year earlier: the calendar factor is that window's ratio
    on_clock = season_on_clock(season, clocked, now=now, as_of=as_of, horizon_days=90, features=features,
                               first_day=first, clv_model=CLVModel)
    assert on_clock.factor == pytest.approx(season.factor, rel=1e-6)
    assert "on the seasonal clock" in on_clock.note and "x 1.00 the calendar's" in on_clock.note


def test_the_clock_is_not_used_on_a_window_whose_base_had_not_lived_a_year():
    season, clocked, now, features, as_of, first = _clock_case()
    young = season_on_clock(season, clocked, now=now, as_of=as_of, horizon_days=90, features=features,
                            first_day=first + pd.Timedelta(days=SEASON_YEAR_DAYS), clv_model=CLVModel)
    assert young is season
    shifted = season_on_clock(season, clocked, now=now, as_of=as_of + pd.Timedelta(days=1), horizon_days=90,
                              features=features, first_day=first, clv_model=CLVModel)
    assert shifted is season  # its window is not the same window a year earlier


def test_a_clocked_forecast_that_is_not_a_positive_number_leaves_the_calendar_season():
    season, clocked, now, features, as_of, first = _clock_case()
    broken = ClockedBGNBD(clocked.clock, clocked.bgnbd | {"r": float("nan")})
    kept = season_on_clock(season, broken, now=now, as_of=as_of, horizon_days=90, features=features,
                           first_day=first, clv_model=CLVModel)
    assert kept is season and np.isfinite(kept.factor)
