"""``churnclv bento``: the registered bundle in BentoML's model store, a Bento built, and served from it."""

from __future__ import annotations

import filecmp
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from churnclv.contract import ChurnclvError
from churnclv.contract.defaults import MODEL_NAME, MODEL_URI
from churnclv.scoring.registry import connect, downloaded
from churnclv.serving.bento import ALIAS, import_model, packaged_model
from tests.ports import free_port
from tests.serving.test_server import BEARER, KEY, server_env, until_ready
from tests.serving.test_service import NUMBERS, history

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def test_the_bentofile_packages_the_model_under_the_alias_the_service_looks_for():
    models = yaml.safe_load((REPO / "bentofile.yaml").read_text())["models"]
    assert models == [{"tag": f"{MODEL_NAME}:latest", "alias": ALIAS}]


def test_a_service_run_from_source_serves_the_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path))  # an empty store: the alias is only known in a Bento
    assert packaged_model() is None


def test_bento_refuses_an_unregistered_model_in_one_line(trained_home, tmp_path):
    env = server_env(CHURNCLV_HOME=str(trained_home.home), BENTOML_HOME=str(tmp_path / "bentoml"))
    out = subprocess.run([BIN / "churnclv", "bento", "--model", f"models:/{MODEL_NAME}/99"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "no model at models:/churn-clv/99" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_run_uri_is_refused_before_anything_is_downloaded(trained_home, tmp_path, monkeypatch):
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    uri = f"runs:/{trained_home.run_id}/model"  # a real model, but no registered version to pin
    with pytest.raises(ChurnclvError, match=r"^runs:/\w+/model is not a registered model: pass "
                                            r"models:/churn-clv/<version> or an alias$"):
        import_model(connect(trained_home.tracking_uri), uri)
    assert not (tmp_path / "bentoml").exists()


@dataclass(frozen=True)
class Built:
    store: Path  # BENTOML_HOME
    bento: str  # the Bento's tag
    model: str  # the packaged model's tag

    @property
    def folder(self) -> Path:
        return self.store / "bentos" / Path(*self.bento.split(":"))


@pytest.fixture(scope="module")
def built(trained_home, tmp_path_factory) -> Built:
    store = tmp_path_factory.mktemp("bentoml")
    env = server_env(CHURNCLV_HOME=str(trained_home.home), BENTOML_HOME=str(store))
    out = subprocess.run([BIN / "churnclv", "bento"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    tags = re.search(r"Built Bento (\S+) with model (\S+)", out.stderr)
    return Built(store, tags.group(1), tags.group(2))


def test_the_bento_carries_the_registered_bundle_and_the_serving_layers(built, trained_home):
    packaged = built.store / "models" / Path(*built.model.split(":"))
    with downloaded(connect(trained_home.tracking_uri), MODEL_URI) as (bundle_dir, _, _):
        files = sorted(p.relative_to(bundle_dir).as_posix() for p in bundle_dir.rglob("*") if p.is_file())
        assert files and filecmp.cmpfiles(bundle_dir, packaged, files, shallow=False)[0] == files
    info = yaml.safe_load((built.folder / "bento.yaml").read_text())
    assert [(m["tag"], m["alias"]) for m in info["models"]] == [(built.model, ALIAS)]
    src = built.folder / "src"
    assert (src / "serving" / "service.py").is_file() and (src / "features" / "io.py").is_file()
    assert not list(src.glob("tests*")) and not (src / "training").exists()
    assert "bentoml==1.4.40" in (built.folder / "env" / "python" / "requirements.txt").read_text()


@pytest.mark.slow
def test_the_bento_serves_the_registered_bundle_without_the_registry(built, trained_home, tmp_path, batch,
                                                                     seed_transactions):
    port = free_port()
    env = server_env(BENTOML_HOME=str(built.store), CHURNCLV_API_KEYS=KEY, MLFLOW_TRACKING_URI="http://127.0.0.1:9",
                     CHURNCLV_SCORES_PATH=str(trained_home.scores_path))
    command = [BIN / "bentoml", "serve", built.bento, "--host", "127.0.0.1", "--port", str(port)]
    with until_ready([str(c) for c in command], env, tmp_path, port) as url:  # the model can only be the Bento's
        info = httpx.get(f"{url}/model", headers=BEARER, timeout=30).json()
        assert (info["version"], info["warnings"]) == (trained_home.version, [])
        as_of = trained_home.as_of
        rows = [r for cid in batch["customer_id"].iloc[[3, 300]] for r in history(seed_transactions, cid, as_of)]
        body = httpx.post(f"{url}/score_transactions", headers=BEARER, timeout=30,
                          json={"as_of": f"{as_of:%Y-%m-%d}", "transactions": rows}).json()
    expected = batch.set_index("customer_id")
    assert len(body["scores"]) == 2
    for row in body["scores"]:
        want = expected.loc[row["customer_id"]]
        assert [row[c] for c in NUMBERS] == pytest.approx([want[c] for c in NUMBERS], rel=1e-9, abs=1e-12)
