"""The bundle as data: saved to a directory of JSON and LightGBM text, read back with identical scores."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest

from churnclv.scoring.artifact import (
    ARTIFACT,
    FORMAT,
    MANIFEST,
    VERSION,
    BundleFormatError,
    aside,
    load_bundle_dir,
    recover,
    save_bundle,
    stage,
    swap,
)
from churnclv.scoring.bundle import ChurnCLVBundle
from churnclv.scoring.clv import CLVParams
from churnclv.scoring.pyfunc import BundleModel
from churnclv.training.pipeline import train
from churnclv.training.registry import signature
from tests.conftest import SEED_AS_OF, fast_config


@pytest.fixture(scope="module")
def bundle(seed_transactions) -> ChurnCLVBundle:
    return train(seed_transactions, as_of=SEED_AS_OF, config=fast_config()).bundle


def _refuse_constants(name: str):
    raise AssertionError(f"{name} is not plain JSON")


def test_a_saved_bundle_scores_identically_and_its_json_is_plain(bundle, seed_transactions, tmp_path):
    path = save_bundle(bundle, tmp_path / "bundle")
    loaded = load_bundle_dir(path)
    for explain in (False, True):
        pd.testing.assert_frame_equal(loaded.score(seed_transactions, as_of=SEED_AS_OF, explain=explain),
                                      bundle.score(seed_transactions, as_of=SEED_AS_OF, explain=explain))
    data = json.loads((path / MANIFEST).read_text(), parse_constant=_refuse_constants)
    assert (data["format"], data["version"]) == (FORMAT, VERSION) == ("churnclv-bundle", 1)
    assert data["as_of"] == "2025-12-31" and data["horizon_days"] == 90
    assert data["churn"]["features"] == list(bundle.models.churn.features)
    assert sorted(p.name for p in path.iterdir()) == ["bundle.json", "churn.txt", "purchases.txt"]
    assert type(loaded.models.clv) is CLVParams and loaded.policy == bundle.policy
    assert loaded.metadata["as_of"] == bundle.metadata["as_of"] and loaded.churn_method == bundle.churn_method
    assert bundle.models.season_measured_on > 0  # the season's factor and the purchases it was measured on
    assert (loaded.models.season_factor, loaded.models.season_measured_on) == (
        bundle.models.season_factor, bundle.models.season_measured_on)


def test_a_bundle_without_boosters_round_trips(bundle, seed_transactions, tmp_path):
    btyd_only = ChurnCLVBundle(models=replace(bundle.models, churn=None, purchases=None), purchases_method="bgnbd",
                               policy=bundle.policy, metadata={"note": float("nan")})
    path = save_bundle(btyd_only, tmp_path / "bundle")
    assert sorted(p.name for p in path.iterdir()) == ["bundle.json"]
    loaded = load_bundle_dir(path)
    assert loaded.churn_method == "bgnbd" and loaded.metadata == {"note": None}
    pd.testing.assert_frame_equal(loaded.score(seed_transactions, as_of=SEED_AS_OF),
                                  btyd_only.score(seed_transactions, as_of=SEED_AS_OF))


def test_a_failed_save_leaves_the_earlier_bundle_whole(bundle, tmp_path):
    path = save_bundle(bundle, tmp_path / "bundle")
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    broken = ChurnCLVBundle(models=bundle.models, purchases_method="bgnbd", policy=bundle.policy,
                            metadata={"not json": object()})
    with pytest.raises(TypeError):
        save_bundle(broken, path)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_another_format_version_is_refused(bundle, tmp_path):
    path = save_bundle(bundle, tmp_path / "bundle")
    data = json.loads((path / MANIFEST).read_text())
    (path / MANIFEST).write_text(json.dumps({**data, "version": VERSION + 1}))
    with pytest.raises(BundleFormatError, match="version 2; this churnclv reads 'churnclv-bundle' version 1"):
        load_bundle_dir(path)
    with pytest.raises(BundleFormatError, match="not a saved churnclv bundle"):
        load_bundle_dir(tmp_path)


def test_the_pyfunc_model_reads_the_bundle_and_needs_as_of(bundle, seed_transactions, tmp_path):
    saved = save_bundle(bundle, tmp_path / "bundle")
    sample = seed_transactions.loc[seed_transactions["customer_id"].isin(["C00001", "C00002"])]
    mlflow.pyfunc.save_model(tmp_path / "model", python_model=BundleModel(), artifacts={ARTIFACT: str(saved)},
                             signature=signature(sample, bundle.score(sample, as_of=SEED_AS_OF), "2025-12-31"),
                             input_example=(sample, {"as_of": "2025-12-31"}))
    model = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    pd.testing.assert_frame_equal(model.predict(sample, params={"as_of": "2025-12-31"}),
                                  bundle.score(sample, as_of=SEED_AS_OF))
    with pytest.raises(ValueError, match="params must include as_of"):  # MLflow itself fills the default
        model.unwrap_python_model().predict(None, sample, params={})
    # the only pickle is the stateless entry point: a reference to scoring.pyfunc.BundleModel, no fitted state
    assert (tmp_path / "model" / "python_model.pkl").stat().st_size < 1_000


#: Audit events of the calls that change a folder (os.replace raises "os.rename"; shutil.rmtree its own
#: event, then one per file and folder it removes).
CHANGES = ("os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree")
CRASHED = 17


def _btyd_only(bundle: ChurnCLVBundle, which: str) -> ChurnCLVBundle:
    """A bundle without boosters: its save runs no LightGBM code, so a forked child may write it."""
    return ChurnCLVBundle(models=replace(bundle.models, churn=None, purchases=None), purchases_method="bgnbd",
                          policy=bundle.policy, metadata={"which": which})


def _save_crashing_at(bundle: ChurnCLVBundle, path: Path, at: int) -> bool:
    """Save ``bundle`` at ``path`` in a child process that dies (``os._exit``, no clean-up of any kind)
    just before its ``at``-th change to a folder; True if it died, False if the save finished first."""
    pid = os.fork()
    if pid == 0:  # the child: count the changes, die before the chosen one
        seen = 0

        def crash(event: str, args: tuple) -> None:
            nonlocal seen
            if event in CHANGES:
                seen += 1
                if seen == at:
                    os._exit(CRASHED)

        sys.addaudithook(crash)
        try:
            save_bundle(bundle, path)
        except BaseException:  # noqa: BLE001 - any failure is reported by the exit code
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, CRASHED), f"the save failed in the child (exit code {code})"
    return code == CRASHED


def test_a_crash_at_any_step_of_a_save_leaves_a_loadable_bundle(bundle, tmp_path):
    old, new = _btyd_only(bundle, "old"), _btyd_only(bundle, "new")
    at = 1
    while True:
        path = save_bundle(old, tmp_path / str(at) / "bundle")
        crashed = _save_crashing_at(new, path, at)
        assert load_bundle_dir(path).metadata["which"] in (["old", "new"] if crashed else ["new"]), at
        save_bundle(new, path)  # the next save finishes what the crash left
        assert load_bundle_dir(path).metadata == {"which": "new"} and not aside(path).exists()
        if not crashed:
            break
        at += 1
    assert at > 5  # the child died at each of the save's changes to a folder, then finished one save


def test_between_the_two_renames_the_earlier_bundle_is_read_where_it_was_set_aside(bundle, tmp_path):
    path = save_bundle(_btyd_only(bundle, "old"), tmp_path / "bundle")
    staged = stage(_btyd_only(bundle, "new"), path)
    os.rename(path, aside(path))  # the first rename of a swap; the process dies here
    assert not path.exists() and load_bundle_dir(path).metadata == {"which": "old"}
    recover(path)
    assert load_bundle_dir(path).metadata == {"which": "old"} and not aside(path).exists()
    swap(staged, path)
    assert load_bundle_dir(path).metadata == {"which": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_a_swap_whose_second_rename_fails_puts_the_earlier_bundle_back(bundle, tmp_path):
    path = save_bundle(_btyd_only(bundle, "old"), tmp_path / "bundle")
    gone = tmp_path / ".bundle.gone.tmp"  # a staged folder that vanished: the rename into place fails
    with pytest.raises(FileNotFoundError):
        swap(gone, path)
    assert load_bundle_dir(path).metadata == {"which": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_old_staging_folders_of_crashed_saves_are_removed(bundle, tmp_path):
    path = save_bundle(_btyd_only(bundle, "old"), tmp_path / "bundle")
    fresh, stale = stage(_btyd_only(bundle, "a"), path), stage(_btyd_only(bundle, "b"), path)
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    recover(path)
    assert fresh.exists() and not stale.exists()  # a fresh one may be another save's, still writing
