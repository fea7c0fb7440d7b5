"""The bundle as data: a directory with one JSON file and the LightGBM boosters as text files.

Layout of a saved bundle (``save_bundle``, read back by ``load_bundle_dir``)::

    bundle.json          {"format": "churnclv-bundle", "version": 1, horizon, methods, CLV parameters,
                          scorers' features and calibration, segment policy, metadata}
    churn.txt            the churn booster (LightGBM's text format), if the bundle has one
    purchases.txt        the purchase booster, if the bundle has one

Nothing in it is a pickle: any code that knows this format reads it, wherever the code lives.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churnclv.contract import ChurnclvError
from churnclv.contract.files import ORPHAN_SECONDS
from churnclv.scoring.boosters import ChurnScorer, PurchaseScorer
from churnclv.scoring.bundle import ChurnCLVBundle, Models
from churnclv.scoring.clock import ClockedBGNBD
from churnclv.scoring.clv import CLVParams
from churnclv.scoring.segments import Policy

ARTIFACT = "bundle"  # the key (and folder name) of the bundle directory among an MLflow model's artifacts
FORMAT = "churnclv-bundle"
VERSION = 1
MANIFEST = "bundle.json"
BOOSTER_FILES = {"churn": "churn.txt", "purchases": "purchases.txt"}


class BundleFormatError(ChurnclvError):
    """A directory that is not a bundle of the format and version this code reads."""


def plain(value: Any) -> Any:
    """``value`` as plain JSON data: numpy scalars and arrays to Python, timestamps to ISO text, tuples
    to lists and non-finite floats to ``None`` (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, pd.Timestamp):
        return _day(value)
    return value


def _day(ts: pd.Timestamp) -> str:
    """'YYYY-MM-DD' for a midnight, the full ISO timestamp otherwise."""
    return f"{ts:%Y-%m-%d}" if ts == ts.normalize() else ts.isoformat()


def to_manifest(bundle: ChurnCLVBundle) -> dict:
    """Everything of ``bundle`` except the boosters, as plain JSON data."""
    models = bundle.models
    churn, purchases = models.churn, models.purchases
    return plain({
        "format": FORMAT,
        "version": VERSION,
        "horizon_days": int(models.horizon_days),
        "as_of": pd.Timestamp(models.as_of),
        "purchases_method": bundle.purchases_method,
        "churn_method": bundle.churn_method,
        "churn_calibration": None if bundle.churn_calibration is None else [float(c) for c in bundle.churn_calibration],
        "season_factor": float(models.season_factor),
        "poisson_scale": float(models.poisson_scale),
        "season_seen": bool(models.season_seen),
        "season_measured_on": int(models.season_measured_on),
        "level_factor": float(models.level_factor),
        "clocked": None if models.clocked is None else models.clocked.to_dict(),
        "clv": CLVParams.to_dict(models.clv),
        "churn": None if churn is None else {
            "features": list(churn.features),
            "calibration": None if churn.calibration is None else [float(c) for c in churn.calibration],
        },
        "purchases": None if purchases is None else {"features": list(purchases.features)},
        "policy": asdict(bundle.policy),
        "metadata": bundle.metadata,
    })


def save_bundle(bundle: ChurnCLVBundle, path: str | os.PathLike) -> Path:
    """Write ``bundle`` as a directory at ``path``; a crash at any moment leaves a whole bundle there.

    The new bundle is written in full in a temporary directory beside ``path`` (:func:`stage`), then
    swapped in by renames only (:func:`swap`): the earlier bundle is set aside whole, the new one renamed
    into place, and only then is the earlier one removed. A swap that a crash interrupted is finished
    first (:func:`recover`); until then :func:`load_bundle_dir` reads the bundle that was set aside.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover(target)
    swap(stage(bundle, target), target)
    return target


def aside(target: Path) -> Path:
    """Where :func:`swap` keeps the earlier bundle of ``target`` while the new one is renamed in."""
    return target.with_name(f".{target.name}.previous")


def stage(bundle: ChurnCLVBundle, target: Path) -> Path:
    """Write ``bundle`` whole into a new temporary directory beside ``target``; that directory.

    A failure removes the temporary directory and leaves ``target`` alone."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        text = json.dumps(to_manifest(bundle), indent=2, sort_keys=True, allow_nan=False)
        (tmp / MANIFEST).write_text(text + "\n", encoding="utf-8")
        for name, file in BOOSTER_FILES.items():
            scorer = getattr(bundle.models, name)
            if scorer is not None:
                (tmp / file).write_text(scorer.booster.model_to_string(), encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def swap(staged: Path, target: Path) -> None:
    """Replace the bundle at ``target`` by the whole bundle at ``staged``, by renames in one folder.

    At every moment either ``target`` or :func:`aside` holds a whole bundle: (1) the earlier bundle is
    renamed aside, (2) the staged one renamed to ``target``, (3) the one aside removed. A failure of (2)
    renames the earlier bundle back.
    """
    previous = aside(target)
    if target.exists():
        os.rename(target, previous)
    try:
        os.rename(staged, target)
    except BaseException:
        if previous.exists() and not target.exists():
            os.rename(previous, target)
        shutil.rmtree(staged, ignore_errors=True)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def recover(target: Path, *, now: float | None = None) -> None:
    """Finish what a crashed :func:`save_bundle` left at ``target``: the bundle set aside is renamed back
    when ``target`` is missing and removed otherwise; staging directories older than
    :data:`contract.files.ORPHAN_SECONDS` are removed."""
    previous = aside(target)
    if previous.exists():
        if target.exists():
            shutil.rmtree(previous)
        else:
            os.rename(previous, target)
    cutoff = (time.time() if now is None else now) - ORPHAN_SECONDS
    for tmp in target.parent.glob(f".{target.name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):  # another process removed it first
            if tmp.is_dir() and tmp.stat().st_mtime < cutoff:
                shutil.rmtree(tmp, ignore_errors=True)


def read_manifest(path: str | os.PathLike) -> dict:
    """The JSON of the bundle directory at ``path``, checked to be of this code's format and version."""
    file = Path(path) / MANIFEST
    if not file.is_file():
        raise BundleFormatError(f"{path} holds no {MANIFEST}: it is not a saved churnclv bundle")
    manifest = json.loads(file.read_text(encoding="utf-8"))
    found = (manifest.get("format"), manifest.get("version"))
    if found != (FORMAT, VERSION):
        raise BundleFormatError(f"{file} is format {found[0]!r} version {found[1]!r}; this churnclv reads "
                                f"{FORMAT!r} version {VERSION}")
    return manifest


def _booster(path: Path, name: str) -> lgb.Booster:
    return lgb.Booster(model_str=(path / BOOSTER_FILES[name]).read_text(encoding="utf-8"))


def load_bundle_dir(path: str | os.PathLike) -> ChurnCLVBundle:
    """The bundle saved at ``path`` by :func:`save_bundle` (its CLV model is a plain :class:`CLVParams`).

    Nothing is written: a bundle that an interrupted save set aside is read where it is."""
    path = Path(path)
    if not (path / MANIFEST).is_file() and (aside(path) / MANIFEST).is_file():
        path = aside(path)  # a save was interrupted between its two renames: the earlier bundle is whole
    data = read_manifest(path)
    churn, purchases = data["churn"], data["purchases"]
    models = Models(
        as_of=pd.Timestamp(data["as_of"]),
        horizon_days=int(data["horizon_days"]),
        clv=CLVParams.from_dict(data["clv"]),
        churn=None if churn is None else ChurnScorer(
            booster=_booster(path, "churn"), features=tuple(churn["features"]),
            calibration=None if churn["calibration"] is None else tuple(churn["calibration"])),
        purchases=None if purchases is None else PurchaseScorer(
            booster=_booster(path, "purchases"), features=tuple(purchases["features"])),
        season_factor=float(data["season_factor"]),
        poisson_scale=float(data["poisson_scale"]),
        season_seen=bool(data.get("season_seen", True)),  # bundles saved before the intervals: not said
        season_measured_on=int(data.get("season_measured_on", 0)),  # saved before it: the rule alone
        level_factor=float(data.get("level_factor", 1.0)),  # bundles saved before the level's choice: BG/NBD's
        clocked=ClockedBGNBD.from_dict(data.get("clocked")),  # bundles saved before the clock: none
    )
    return ChurnCLVBundle(models=models, purchases_method=data["purchases_method"], policy=Policy(**data["policy"]),
                          metadata=data["metadata"], churn_method=data["churn_method"],
                          churn_calibration=_pair(data.get("churn_calibration")))


def _pair(values: list | None) -> tuple[float, float] | None:
    """A stored (slope, intercept), or None (a bundle saved before rankings by expected purchases)."""
    return None if values is None else (float(values[0]), float(values[1]))
