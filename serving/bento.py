"""The registered model inside a Bento: ``bentoml build`` packages the same artifact the registry holds.

:func:`import_model` (``churnclv bento``) copies the bundle directory of a registered version — the
files :mod:`scoring.artifact` reads as data — into BentoML's model store as ``churn-clv:<tag>``, with the
registry facts as its metadata. ``bentofile.yaml`` names that model with the alias :data:`ALIAS`, so
the Bento carries it, and a service started from the Bento serves it (:func:`packaged_model`) without
asking the registry. A service started from source has no such alias and serves the registry's version.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import bentoml
from bentoml.exceptions import NotFound

from churnclv.contract import ChurnclvError
from churnclv.contract.defaults import MODEL_NAME
from churnclv.contract.model_uri import parse_model_uri
from churnclv.scoring.artifact import BundleFormatError, load_bundle_dir
from churnclv.scoring.registry import downloaded, registry_facts
from churnclv.serving.model import ServedModel

#: The name ``bentofile.yaml`` gives the packaged model; only a service loaded from a Bento knows it.
ALIAS = "churnclv-packaged"


def import_model(client: Any, uri: str) -> bentoml.Model:
    """Copy the bundle of the registered version at ``uri`` into BentoML's model store (one new model
    version, labelled with the registered version); the bundle is read and checked first."""
    if not parse_model_uri(uri).registered:
        raise ChurnclvError(f"{uri} is not a registered model: pass models:/{MODEL_NAME}/<version> or an alias")
    with downloaded(client, uri) as (where, _, mv):
        facts = registry_facts(mv)
        with bentoml.models.create(MODEL_NAME, labels={"registered_version": facts["version"]},
                                   metadata=facts) as model:
            shutil.copytree(where, model.path, dirs_exist_ok=True)
    return model


def packaged_model() -> ServedModel | None:
    """The model the running Bento carries (with its registry facts), or None when the service runs from
    source. A Bento whose model is not a bundle of this format is refused with the command that fixes it."""
    try:
        model = bentoml.models.get(ALIAS)
    except NotFound:
        return None
    try:
        bundle = load_bundle_dir(Path(model.path))
    except BundleFormatError as error:
        raise ChurnclvError(f"the Bento's model {model.tag} is not a churnclv bundle of this version ({error}): "
                            "rebuild the Bento with churnclv bento") from None
    bundle.metadata.update(model.info.metadata)
    return ServedModel(bundle, dict(bundle.metadata))


#: The folder of this installation's source: ``bentofile.yaml`` and the layers it packages.
SOURCE = Path(__file__).resolve().parents[1]


def build(project: Path = SOURCE) -> bentoml.Bento:
    """``bentoml build`` on ``project/bentofile.yaml``: the service's layers and the newest ``churn-clv``
    model of the store (run :func:`import_model` first)."""
    bentofile = project / "bentofile.yaml"
    if not bentofile.is_file():
        raise ChurnclvError(f"no bentofile.yaml in {project}: pass --project with the churnclv source folder")
    return bentoml.bentos.build_bentofile(str(bentofile), build_ctx=str(project))
