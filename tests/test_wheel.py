"""The installed distribution adds one name to site-packages, ``churnclv``: it installs beside a data
scientist's own packages called ``features`` and ``training``, and both import."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import sysconfig
import textwrap
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[1]

CHECK = textwrap.dedent("""
    import importlib, importlib.resources, pkgutil, sys
    import features, training
    assert (features.OWNER, training.OWNER) == ("theirs", "theirs"), (features.__file__, training.__file__)
    import churnclv
    modules = [m.name for m in pkgutil.walk_packages(churnclv.__path__, "churnclv.")
               if not m.name.endswith("__main__") and ".migrations." not in m.name]  # alembic runs those
    for name in modules:
        module = importlib.import_module(name)
        assert module.__file__.startswith(sys.argv[1]), module.__file__
    import churnclv.features as ours
    assert ours.build_features is not None and features.OWNER == "theirs"
    data = importlib.resources.files("churnclv.seeds") / "transactions.csv"
    page = importlib.resources.files("churnclv.serving.page") / "templates"
    migrations = importlib.resources.files("churnclv.campaigns.migrations") / "versions"
    assert data.is_file() and any(page.iterdir()) and any(migrations.iterdir())
    from churnclv.campaigns.migrate import current_revision, head_revision, open_store
    assert current_revision(open_store("sqlite:///store.db")) == head_revision()
    print(len(modules))
""")


SOURCES = ["pyproject.toml", "README.md", "churnclv", "contract", "features", "scoring", "campaigns", "training",
           "serving", "seeds"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the sources (setuptools writes its build/ folder beside them)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("dist")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "screenshots"))
        else:
            shutil.copy2(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(source)], check=True, timeout=600, capture_output=True)
    return next(out.glob("churnclv-*.whl"))


def test_the_wheel_holds_only_the_churnclv_package(wheel):
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"churnclv"}


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh environment holding the wheel (its ``churnclv`` command too) and packages named ``features`` and
    ``training``; the libraries churnclv needs come from this environment, after the new one's own packages (a
    path line: no .pth of this environment runs there, so this checkout's editable install is not seen)."""
    venv = tmp_path_factory.mktemp("installed") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", str(wheel)], check=True, timeout=600, capture_output=True)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c",
                                "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    for name in ("features", "training"):
        (site / name).mkdir()
        (site / name / "__init__.py").write_text('OWNER = "theirs"\n')
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def fresh_env(venv: Path, home: Path, **more: str) -> dict:
    return {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home), "CHURNCLV_HOME": str(home / "churnclv"),
            "BENTOML_HOME": str(home / "bentoml"), "BENTOML_DO_NOT_TRACK": "true", **more}


def test_the_wheel_installs_beside_packages_named_features_and_training(installed, tmp_path):
    site = next((installed / "lib").glob("python*/site-packages"))
    done = subprocess.run([str(installed / "bin" / "python"), "-c", CHECK, str(site)], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path, env=fresh_env(installed, tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) > 60


@pytest.mark.slow
def test_the_installed_command_trains_scores_and_serves(installed, tmp_path):
    env = fresh_env(installed, tmp_path)
    run = lambda *args: subprocess.run(["churnclv", *args], capture_output=True, text=True, timeout=900,
                                       cwd=tmp_path, env=env)
    assert "train" in run("--help").stdout
    log = ROOT / "seeds" / "transactions.csv"
    trained = run("train", "-t", str(log), "--cutoffs", "3")
    assert trained.returncode == 0 and "becomes champion" in trained.stderr, trained.stdout + trained.stderr
    scored = run("score", "-t", str(log))
    assert scored.returncode == 0 and (tmp_path / "churnclv" / "scores" / "latest.parquet").is_file(), scored.stderr
    port = free_port()
    server = subprocess.Popen(["churnclv", "serve", "--open", "--port", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        model = httpx.get(f"http://127.0.0.1:{port}/model", timeout=10)
        assert model.status_code == 200 and model.json()["version"] == "1", model.text
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0]
    assert server.returncode == 0 and "stopped cleanly" in output, output[-3000:]
