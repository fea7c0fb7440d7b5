"""The Bento packages the layers the service runs, and not training/ or the CLI."""

from __future__ import annotations

from pathlib import Path

import pathspec
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_bento_includes_the_serving_layers_only():
    config = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    include = pathspec.PathSpec.from_lines("gitwildmatch", config["include"])  # BentoML's own matching
    exclude = pathspec.PathSpec.from_lines("gitwildmatch", config["exclude"])
    folders = [d for d in ROOT.iterdir() if d.is_dir() and not d.name.startswith(".")]
    files = [p.relative_to(ROOT).as_posix() for d in folders for p in d.rglob("*.py")]
    packaged = {f for f in files if include.match_file(f) and not exclude.match_file(f)}
    assert {f.split("/")[0] for f in packaged} - {"churnclv"} == {"contract", "features", "scoring", "campaigns",
                                                                "serving"}
    assert {f for f in packaged if f.startswith("churnclv/")} == {"churnclv/__init__.py"}  # the namespace, no CLI
