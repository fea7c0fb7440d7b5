"""Model URIs, parsed in one place: ``models:/<name>@<alias>``, ``models:/<name>/<version>`` or another
MLflow URI (``runs:/<run id>/model``, ``file:///...``, ``s3://...``).

:func:`parse_model_uri` splits a URI into a :class:`ModelURI`; the settings, the registry and the Bento
builder read its parts instead of taking the text apart themselves. :func:`version_uri` writes the one
form a served model is pinned to.
"""

from __future__ import annotations

from dataclasses import dataclass

from churnclv.contract.errors import ChurnclvError

REGISTRY_SCHEME = "models"


class ModelURIError(ChurnclvError, ValueError):
    """Text that is not a model URI (or a malformed ``models:/`` one)."""


@dataclass(frozen=True)
class ModelURI:
    """A model URI in parts.

    ``scheme`` is lower-case, ``""`` for a plain path (no scheme, or a one-letter drive such as ``C:``);
    ``name`` and exactly one of ``version`` or ``alias`` are set for a registered model (``models:/``).
    """

    uri: str
    scheme: str
    name: str | None = None
    version: str | None = None
    alias: str | None = None

    @property
    def registered(self) -> bool:
        """Does it name a registered model (``models:/``), by version or by alias?"""
        return self.scheme == REGISTRY_SCHEME


def version_uri(name: str, version: str | int) -> str:
    """``models:/<name>/<version>``: a registered version, pinned."""
    return f"{REGISTRY_SCHEME}:/{name}/{version}"


def _registered(uri: str, rest: str) -> ModelURI:
    """The parts of ``models:`` + ``rest``."""
    name, at, alias = rest.removeprefix("/").partition("@")
    name, slash, version = name.partition("/")
    if not rest.startswith("/") or not name or (at and slash) or not (alias if at else version) or "/" in version:
        raise ModelURIError(f"{uri!r} is not a registered model URI: write models:/<name>@<alias> or "
                            "models:/<name>/<version>")
    return ModelURI(uri, REGISTRY_SCHEME, name=name, version=None if at else version, alias=alias if at else None)


def parse_model_uri(uri: str) -> ModelURI:
    """The parts of ``uri``; raises :class:`ModelURIError` for blank text, text with white space, or a
    malformed ``models:/`` URI (no name, neither or both of a version and an alias)."""
    if not uri or any(c.isspace() for c in uri):
        raise ModelURIError(f"{uri!r} is not a model URI: it is blank or holds a space")
    scheme, colon, rest = uri.partition(":")
    if scheme.lower() == REGISTRY_SCHEME and colon:
        return _registered(uri, rest)
    if colon and len(scheme) > 1 and scheme.isascii() and scheme[0].isalpha() and rest:
        return ModelURI(uri, scheme.lower())
    return ModelURI(uri, "")
