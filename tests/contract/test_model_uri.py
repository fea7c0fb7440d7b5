"""Model URIs: one parser for the settings, the registry and the Bento builder."""

from __future__ import annotations

import pytest

from churnclv.contract.defaults import MODEL_URI
from churnclv.contract.model_uri import ModelURI, ModelURIError, parse_model_uri, version_uri


@pytest.mark.parametrize("uri, parts", [
    ("models:/churn-clv@champion", ModelURI("models:/churn-clv@champion", "models", "churn-clv", None, "champion")),
    ("models:/churn-clv/12", ModelURI("models:/churn-clv/12", "models", "churn-clv", "12", None)),
    ("runs:/0a1b/model", ModelURI("runs:/0a1b/model", "runs")),
    ("S3://bucket/model", ModelURI("S3://bucket/model", "s3")),
    ("file:///tmp/model", ModelURI("file:///tmp/model", "file")),
    ("/tmp/model", ModelURI("/tmp/model", "")),
    ("C:/models/churn", ModelURI("C:/models/churn", "")),
    ("churn-clv", ModelURI("churn-clv", "")),
])
def test_uris_split_into_their_parts(uri, parts):
    assert parse_model_uri(uri) == parts
    assert parse_model_uri(uri).registered == (parts.scheme == "models")


@pytest.mark.parametrize("uri", [
    "", " ", "models:/churn-clv", "models:/churn-clv/", "models:/churn-clv@", "models:/@champion", "models:/",
    "models:/churn-clv/1@champion", "models:/churn-clv/1/2", "models:churn-clv/1", "models:/churn clv/1",
    "runs:/abc /model",
])
def test_malformed_uris_are_refused_in_one_line(uri):
    with pytest.raises(ModelURIError) as refused:
        parse_model_uri(uri)
    assert "\n" not in str(refused.value) and repr(uri) in str(refused.value)
    assert isinstance(refused.value, ValueError)


def test_the_default_and_a_pinned_version_parse_back():
    assert (parse_model_uri(MODEL_URI).name, parse_model_uri(MODEL_URI).alias) == ("churn-clv", "champion")
    pinned = parse_model_uri(version_uri("churn-clv", 7))
    assert (pinned.uri, pinned.name, pinned.version, pinned.alias) == ("models:/churn-clv/7", "churn-clv", "7", None)
