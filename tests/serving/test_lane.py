"""The lean path of /score, /score_transactions and /prioritise (serving.lane) and what makes it cheap: answers in
the response models' own shape, /prioritise answers kept until the table or the campaign store changes (also by
another process), the ids' hash index, the rate limits' blocks and the failed authentications' check."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import orjson
import pytest
from sqlalchemy import create_engine

from churnclv.serving.limits import RateLimits, rate
from churnclv.serving.plans import prioritise_response
from churnclv.serving.schemas import (
    CustomerScore,
    PrioritiseRequest,
    PrioritiseResponse,
    ScoreResponse,
    ScoreTransactionsResponse,
)
from churnclv.serving.state import ServingState
from churnclv.serving.table import IdIndex, score_rows
from churnclv.serving.targeting import StoreWatch, Targeting
from tests.serving.conftest import AUTH, error_of


def post(api, path, body):
    return api.client.post(path, json=body, headers=AUTH)


def same_as_model(body: dict, model) -> None:
    """The answer has every field of its response model, in order, with the values the model gives them."""
    assert list(body) == list(model.model_fields)
    assert model.model_validate(body).model_dump(mode="json") == body


def test_score_answers_are_the_response_model_field_for_field(api, batch):
    ids = batch["customer_id"].iloc[[4, 40, 400]].tolist()
    for explain in (False, True):
        body = post(api, "/score", {"customer_ids": [*ids, "nobody"], "explain": explain}).json()
        same_as_model(body, ScoreResponse)
        assert [list(row) for row in body["scores"]] == [list(CustomerScore.model_fields)] * 3
        assert (body["scores"][0]["drivers"] is None) is not explain and body["unknown_ids"] == ["nobody"]
        assert body["scores"][0]["clv_low"] == float(batch["clv_low"].iloc[4])


def test_the_rows_text_made_once_per_table_is_the_rows_answers(api, batch):
    table = api.service.state.current.table
    positions = np.array([7, 0, len(batch) - 1, 300])
    ids = table.ids[positions].tolist()
    rows, unknown = table.row_texts.answer([ids[0], "nobody", *ids, ids[2], "nobody either"])  # request order, once
    assert orjson.loads(b"[" + rows + b"]") == score_rows(table, positions)
    assert unknown == ["nobody", "nobody either"]
    assert table.row_texts.answer([]) == (b"", []) and table.row_texts.answer(["nobody"]) == (b"", ["nobody"])


def test_score_transactions_answers_are_the_response_model_field_for_field(api):
    rows = [{"customer_id": "early", "timestamp": "2025-01-05", "amount": 20.0},
            {"customer_id": "early", "timestamp": "2025-03-05", "amount": 35.5}]
    for explain in (False, True):
        body = post(api, "/score_transactions", {"as_of": "2025-12-31", "transactions": rows, "explain": explain}).json()
        same_as_model(body, ScoreTransactionsResponse)
        assert list(body["scores"][0]) == list(CustomerScore.model_fields)
        assert isinstance(body["scores"][0]["drivers"], list) is explain


@pytest.mark.parametrize("body", [
    b'{"customer_ids": ["a", "b", "a"]}', b'{"customer_ids": ["a"], "explain": true}', b'{"explain": false, "customer_ids": ["\\u00e9"]}',
    b'{"customer_ids": []}', b'{"customer_ids": "a"}', b'{"customer_ids": [1]}', b'{"customer_ids": [null]}',
    b'{"customer_ids": ["a"], "explain": "true"}', b'{"customer_ids": ["a"], "explain": 1}', b'{"customer_ids": ["a"], "x": 1}',
    b'{}', b'[]', b'null', b'', b'{"customer_ids": ["a"]} x', b'{"customer_ids": ["\\ud800"]}',
    b'{"customer_ids": [' + b",".join([b'"a"'] * 10_001) + b"]}", b'{"customer_ids": [' + b",".join([b'"a"'] * 10_000) + b"]}",
])
def test_a_plain_score_body_reads_as_pydantic_reads_it_and_any_other_goes_to_pydantic(body):
    from pydantic import ValidationError

    from churnclv.serving.lane import plain_score_request
    from churnclv.serving.schemas import ScoreRequest

    plain = plain_score_request(body)
    try:
        judged = ScoreRequest.model_validate_json(body or b"{}")
    except ValidationError:
        judged = None
    assert plain is None or plain.model_dump() == judged.model_dump()  # never accepts what pydantic refuses
    lax = body in (b"", b'{"customer_ids": ["a"], "explain": "true"}', b'{"customer_ids": ["a"], "explain": 1}')
    assert (plain is None) == (judged is None or lax)  # pydantic's lax readings go through pydantic


def test_bad_bodies_are_one_line_4xx_naming_the_field_and_other_methods_405(api):
    r = api.client.post("/prioritise", content=b"", headers=AUTH)  # an empty body is {} (as BentoML reads it)
    assert r.status_code == 200 and len(r.json()["customers"]) == 100
    r = api.client.post("/score", content=b"null", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422 and error_of(r)["details"][0]["field"] == "customer_ids"
    r = post(api, "/prioritise", {"limit": 7.5, "contact_cost": -1})
    error = error_of(r)
    assert r.status_code == 422 and [d["field"] for d in error["details"]] == ["limit", "contact_cost"]
    assert error["message"].startswith("2 problems in the request: limit: ") and "\n" not in error["message"]
    r = api.client.get("/score", headers=AUTH)
    assert r.status_code == 405 and error_of(r)["code"] == "method_not_allowed" and r.headers["allow"] == "POST"


@pytest.fixture()
def store(api, tmp_path):
    """The service on a copy of the score table and a fresh SQLite campaign store."""
    url = f"sqlite:///{tmp_path / 'churnclv.db'}"
    scores = tmp_path / "latest.parquet"
    shutil.copy(api.trained.scores_path, scores)
    state = ServingState(api.config(scores_path=scores))
    state.refresh(force=True)
    original = api.service.targeting
    api.service.state, api.service.targeting = state, Targeting(url, served=lambda: api.service.state.current)
    yield url
    api.service.targeting.close()
    api.service.targeting = original


def suppress_elsewhere(url: str, ids: list[str]) -> None:
    """Suppress customers from another process, as `churnclv suppress` would."""
    code = ("import sys; from churnclv.campaigns import open_store, suppress; "
            "suppress(open_store(sys.argv[1]), sys.argv[2:], reason='objected', source='test', who='test')")
    subprocess.run([sys.executable, "-c", code, url, *ids], check=True, timeout=120)


def test_prioritise_answers_are_kept_until_another_process_changes_the_store(api, store):
    first = post(api, "/prioritise", {"limit": 5})
    table = api.service.state.current.table
    view = api.service.targeting.view(table)
    assert first.json() == prioritise_response(table, PrioritiseRequest(limit=5), view=view).model_dump(mode="json")
    same_as_model(first.json(), PrioritiseResponse)
    assert api.service.targeting.cached_view(table) is view  # nothing committed since: no query
    assert post(api, "/prioritise", {"limit": 5}).content == first.content
    assert post(api, "/prioritise", {"limit": 6}).json()["customers"][:5] == first.json()["customers"]
    assert len(api.service.answers) == 2
    top = first.json()["customers"][0]["customer_id"]
    suppress_elsewhere(store, [top])
    assert api.service.targeting.cached_view(table) is None  # the other process's commit is seen
    after = post(api, "/prioritise", {"limit": 5}).json()
    assert top not in [c["customer_id"] for c in after["customers"]] and after["summary"]["suppressed"] == 1
    assert after["customers"][0] == {**first.json()["customers"][1], "rank": 1}
    assert len(api.service.answers) == 1  # the answers of the old view are gone


def test_a_new_score_table_makes_new_answers(api, store, batch, tmp_path):
    before = post(api, "/prioritise", {"limit": 3}).json()
    from tests.serving.conftest import write_scores

    changed = batch.assign(value_at_risk=batch["value_at_risk"][::-1].to_numpy())  # another ranking
    path = write_scores(changed, tmp_path / "changed.parquet")
    state = ServingState(api.config(scores_path=path))
    state.refresh(force=True)
    api.service.state = state
    after = post(api, "/prioritise", {"limit": 3}).json()
    assert after["customers"] != before["customers"]
    expected = prioritise_response(state.current.table, PrioritiseRequest(limit=3),
                                   view=api.service.targeting.view(state.current.table))
    assert after == expected.model_dump(mode="json")


def test_the_store_watch_sees_every_commit_and_a_replaced_file(tmp_path):
    path = tmp_path / "store.db"
    url = f"sqlite:///{path}"
    from churnclv.campaigns import open_store

    engine = open_store(url)
    watch = StoreWatch.of(engine)
    first = watch.version()
    assert first is not None and watch.version() == first  # reads change nothing
    suppress_elsewhere(url, ["c1"])
    second = watch.version()
    assert second != first and watch.version() == second
    from churnclv.campaigns import suppress

    suppress(engine, ["c2"], reason="objected", source="test", who="test")  # this process, another connection
    assert watch.version() != second
    engine.dispose()
    shutil.copy(path, tmp_path / "copy.db")
    (tmp_path / "copy.db").replace(path)  # the same contents in a new file
    assert watch.version()[:2] != first[:2]
    watch.close()
    assert StoreWatch.of(create_engine("postgresql+psycopg://u@127.0.0.1:1/db")) is None  # asks the database


def test_the_id_index_finds_what_a_dict_finds():
    rng = np.random.default_rng(3)
    ids = np.asarray([f"c{i}" for i in rng.permutation(5000)] + ["", "é", "1"], dtype=object)
    index, truth = IdIndex(ids), {c: i for i, c in enumerate(ids.tolist())}
    for n in (0, 1, 5, 8, 9, 300):
        wanted = [f"c{i}" for i in rng.integers(0, 6000, n)] + ["", "nobody"][: n % 3]
        assert index.positions(wanted).tolist() == [truth.get(c, -1) for c in wanted]
    assert "é" in index and index["1"] == 5002 and "c5000" not in index and len(index) == 5003
    assert not IdIndex(np.asarray(["a", "b", "a"], dtype=object)).unique
    # an id longer than the table's widest, cut to the width it is compared at, still differs from them all
    ascii_ids = [f"c{i}" for i in range(5000)]
    plain = IdIndex(np.asarray(ascii_ids, dtype=object))
    longer = np.array(["c4999", "c49990", "c4999012", "c499"], dtype=plain._wanted_text)
    assert (plain._texts[[4999] * 4] == longer).tolist() == [True, False, False, False]
    wanted = ascii_ids[:9] + ["c4999é", "c49990"]
    assert plain.positions(wanted).tolist() == list(range(9)) + [-1, -1]  # the first compared as objects
    # ids compared as objects: a NUL at the end (numpy's fixed-width text would drop it), one very long id, or
    # other than ASCII
    for odd in (["ab\x00", "ab", "x"], ["ab", "y" * 100, "x"], ["ab", "é", "x"]):
        index = IdIndex(np.asarray(odd + [f"n{i}" for i in range(20)], dtype=object))
        wanted = ["ab", "ab\x00", "y" * 100, "x", "n3", "nope", "a", "ab\x00\x00", "y" * 99, "n19", "é", "e"]
        assert index.positions(wanted).tolist() == [
            next((i for i, c in enumerate(index.ids.tolist()) if c == w), -1) for w in wanted]


def test_a_keys_blocks_never_let_two_workers_past_the_limit(tmp_path):
    """Two workers on one file, each taking a key's requests in blocks of 10 (640 a minute): together they serve
    at most 640, and at least 640 less a block each."""
    path = tmp_path / "limits.sqlite"
    workers = [RateLimits(path, per_key=rate("640/minute"), failures=None) for _ in range(2)]
    assert workers[0].block == 10
    served = sum(workers[i % 2].over("k") is None for i in range(700))
    counted = workers[0].limiter.get_window_stats(workers[0].per_key, "key", "k")
    assert 640 - 2 * 9 <= served <= 640 and counted.remaining <= 640 - served
    assert workers[1].over("k").reason == "rate_limited"
    assert workers[0].over("other") is None  # another key: its own count


def test_failed_authentications_recorded_by_one_worker_lock_the_address_out_at_the_other(tmp_path):
    path = tmp_path / "limits.sqlite"
    a, b = (RateLimits(path, per_key=None, failures=rate("3/minute")) for _ in range(2))
    assert b.locked_out("10.0.0.9") is None  # found clear, remembered at this data_version
    for _ in range(3):
        a.failed("10.0.0.9")
    refusal = b.locked_out("10.0.0.9")
    assert refusal is not None and refusal.reason == "auth_locked_out" and refusal.retry_after >= 1
    assert b.locked_out("10.0.0.8") is None and a.locked_out("10.0.0.9") is not None
