"""Cohort features, the cohort retention table on a hand example, and its heat-map."""

import io
import subprocess
import sys

import numpy as np
import pandas as pd

from churnclv.features.cohorts import cohort_features, cohort_table, plot_cohort_table
from tests.features.frames import frame

AS_OF = "2024-03-15"


ROWS = [
    ("J", "2023-11-10", 5.0), ("J", "2024-01-03", 5.0),                                  # cohort 2023-11
    ("A", "2024-01-05", 1.0), ("A", "2024-02-10", 1.0), ("A", "2024-03-01", 1.0),        # cohort 2024-01
    ("B", "2024-01-20", 1.0), ("B", "2024-03-14", 1.0),
    ("C", "2024-01-31 23:00", 1.0),
    ("D", "2024-01-02", 1.0), ("D", "2024-03-16", 1.0),                                  # March 16: after as_of
    ("E", "2024-02-29", 1.0), ("E", "2024-03-15 23:00", 1.0),                            # cohort 2024-02
    ("F", "2024-02-01", 1.0), ("F", "2024-03-05", -1.0),                                 # a return is no purchase
    ("G", "2024-03-03", 0.0),                                                            # cohort 2024-03
    ("H", "2024-03-20", 1.0),                                                            # first buys after as_of
    ("I", "2024-01-08", -4.0),                                                           # only a return
]


def test_cohort_table_hand_example():
    nan = np.nan
    expected = pd.DataFrame(
        {
            "customers": np.array([1, 4, 2, 1], dtype=np.int64),
            0: [1.0, 1.0, 1.0, 1.0],
            1: [0.0, 0.25, 0.5, nan],
            2: [1.0, 0.5, nan, nan],
            3: [0.0, nan, nan, nan],
            4: [0.0, nan, nan, nan],
        },
        index=pd.Index(["2023-11", "2024-01", "2024-02", "2024-03"], dtype="str", name="cohort"),
    )
    pd.testing.assert_frame_equal(cohort_table(frame(ROWS), as_of=AS_OF), expected)


def test_cohort_features():
    got = cohort_features(frame(ROWS), as_of="2024-05-02")
    assert got.loc["J", "cohort"] == "2023-11"
    assert got.loc["J", "tenure_months"] == 6
    assert got.loc["H", "cohort"] == "2024-03"
    assert got.loc["H", "tenure_months"] == 2
    assert got.loc["G", "tenure_months"] == 2
    assert "I" not in got.index
    assert got["tenure_months"].dtype == np.int64
    assert got["cohort"].dtype == "str"


def test_plot_cohort_table_is_a_figure_with_sizes_and_percentages():
    from matplotlib.figure import Figure

    table = cohort_table(frame(ROWS), as_of=AS_OF)
    fig = plot_cohort_table(table)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[1] == "2024-01  (n=4)"
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == int(np.isfinite(table.drop(columns="customers").to_numpy()).sum())
    assert "25%" in texts and "100%" in texts
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"


def test_importing_features_does_not_import_pyplot():
    code = "import sys, features.cohorts, features.build; print('matplotlib.pyplot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
