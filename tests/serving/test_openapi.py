"""GET /docs.json: a valid OpenAPI 3.1 document with the bearer key and the real error answers, and
schemathesis against the real server finds no server error and no answer off the document."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from openapi_spec_validator import validate

from tests.serving.conftest import AUTH
from tests.serving.test_server import KEY, running_server

PROTECTED = {"/score": "post", "/score_transactions": "post", "/prioritise": "post", "/reload": "post",
             "/model": "get", "/profit_curve": "post", "/customers": "post", "/segments": "get",
             "/campaigns": "post", "/suppressions": "post", "/campaigns/{name}": "get",
             "/customers/{customer_id}": "delete"}


@pytest.fixture(scope="module")
def document(harness) -> dict:
    r = harness.client.get("/docs.json")
    assert r.status_code == 200
    return r.json()


def test_the_document_is_valid_openapi(document):
    assert document["openapi"].startswith("3.1.")
    validate(document)  # raises on any operation that does not validate


def test_the_bearer_key_is_declared_and_applied(document):
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "an API key of the service"}
    for path, method in PROTECTED.items():
        assert document["paths"][path][method]["security"] == [{"bearer": []}], path
    for path in ("/healthz", "/livez", "/readyz", "/metrics"):
        assert document["paths"][path]["get"]["security"] == [], path


def test_every_operation_lists_its_real_errors_with_the_error_body(document):
    error = {"$ref": "#/components/schemas/ErrorBody"}
    for path, method in PROTECTED.items():
        responses = document["paths"][path][method]["responses"]
        wanted = {"401", "429", "500"} | ({"400", "408", "413", "415", "422"} if method == "post" else set())
        wanted |= {"503"} if path != "/reload" else set()
        assert wanted <= set(responses), (path, sorted(responses))
        for status in wanted:
            assert responses[status]["content"]["application/json"]["schema"] == error, (path, status)
        assert responses["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}, path
    assert "429" not in document["paths"]["/healthz"]["get"]["responses"]
    assert "CHURNCLV_RATE_LIMIT" in document["info"]["description"]
    body = document["components"]["schemas"]["ErrorBody"]
    assert body["required"] == ["error"] and "Error" in json.dumps(body)


def test_the_documented_errors_are_what_the_service_answers(api):
    from jsonschema import Draft202012Validator

    doc = api.client.get("/docs.json").json()
    schema = {**doc["components"]["schemas"]["ErrorBody"], "$defs": doc["components"]["schemas"]}
    schema = json.loads(json.dumps(schema).replace("#/components/schemas/", "#/$defs/"))
    for response in (api.client.post("/score", json={}),
                     api.client.post("/score", content=b"x", headers={**AUTH, "Content-Type": "text/plain"}),
                     api.client.post("/score", json={"customer_ids": []}, headers=AUTH)):
        Draft202012Validator(schema).validate(response.json())


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(trained_home, tmp_path):
    """At least 500 generated cases over every operation, with a valid key (about a minute)."""
    report = tmp_path / "report.json"
    # a home of its own: the generated erasures and suppressions change its copy of the scores and its store only
    home = tmp_path / "home"
    (home / "scores").mkdir(parents=True)
    shutil.copy(trained_home.scores_path, home / "scores" / "latest.parquet")
    with running_server(home, tmp_path, workers=1, MLFLOW_TRACKING_URI=trained_home.tracking_uri) as url:
        done = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/docs.json", "--url", url,
             "-H", f"Authorization: Bearer {KEY}", "--checks", "not_a_server_error,response_schema_conformance,"
             "status_code_conformance,content_type_conformance", "--phases", "examples,coverage,fuzzing",
             "--max-examples", "80", "--seed", "20261125", "--generation-deterministic", "--no-shrink",
             "--continue-on-failure", "--request-timeout", "30", "--report", "ndjson",
             "--report-ndjson-path", str(report)],
            capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert re.search(r"Selected: 20/20\s+Tested: 20", out), out[-3000:]
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", out).groups())
    print(f"schemathesis: {generated} cases generated, {passed} passed")
    assert generated == passed >= 800, out[-3000:]
    assert '"ScenarioFinished"' in report.read_text()


def test_score_transactions_documents_the_events_and_what_they_do_not_change(document):
    schemas = document["components"]["schemas"]
    events = schemas["ScoreTransactionsRequest"]["properties"]["events"]
    assert "does not change the suppression list" in events["description"]
    assert "churnclv score --events" in events["description"]
    assert "events" not in schemas["ScoreTransactionsRequest"].get("required", [])
    event = schemas["Event"]
    assert set(event["required"]) == {"customer_id", "timestamp", "kind"} and "value" in event["properties"]
    assert "nps" in event["properties"]["kind"]["description"]
    assert "events_used" in schemas["ScoreTransactionsResponse"]["properties"]
