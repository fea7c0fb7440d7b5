"""The installed distribution adds one name to site-packages, ``churnclv``: it installs beside a data
scientist's own packages called ``features`` and ``training``, and both import."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

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


def test_the_wheel_installs_beside_packages_named_features_and_training(wheel, tmp_path):
    """In a fresh environment whose other packages are this one's (no copy of the checkout on the path)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True, timeout=120)
    python = tmp_path / "venv" / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, timeout=600, capture_output=True)
    for name in ("features", "training"):
        (site / name).mkdir()
        (site / name / "__init__.py").write_text('OWNER = "theirs"\n')
    # The libraries churnclv needs, from this environment, after the new one's own packages (no .pth runs
    # from there: this checkout's editable install is not seen).
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run([str(python), "-c", CHECK, str(site)], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) > 60
