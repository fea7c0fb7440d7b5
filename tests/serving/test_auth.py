"""API keys, body size cap, content type and the error format, on a tiny app behind :class:`Guard`."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from churnclv.contract.settings import Settings, SettingsError, parse_keys
from churnclv.serving import auth
from churnclv.serving.auth import Access, AccessError, Guard, check_access, read_body


async def echo(request: Request):
    return JSONResponse({"bytes": len(await request.body())})


async def boom(request: Request):
    return PlainTextResponse("Internal Server Error", status_code=500)


APP = Starlette(routes=[Route("/score", echo, methods=["POST"]), Route("/healthz", echo, methods=["GET"]),
                        Route("/boom", boom, methods=["GET"])])


def client(**access) -> TestClient:
    settings = {"keys": (b"alpha", b"beta"), "max_body_bytes": 100, **access}
    return TestClient(Guard(APP, access=Access(**settings)), raise_server_exceptions=False)


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"])
    return body["error"]


def test_missing_or_wrong_key_gets_401_in_our_format():
    c = client()
    for headers in ({}, {"Authorization": "Bearer gamma"}, {"Authorization": "Basic alpha"},
                    {"Authorization": "Bearer "}, {"Authorization": "alpha"}):
        r = c.post("/score", json={}, headers=headers)
        assert r.status_code == 401, headers
        assert error_of(r)["code"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"


def test_any_configured_key_is_accepted():
    c = client()
    for key in ("alpha", "beta"):
        assert c.post("/score", json={"a": 1}, headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_every_key_is_compared_in_constant_time(monkeypatch):
    seen = []
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: seen.append(a) or a == b)
    scope = {"headers": [(b"authorization", b"Bearer alpha")]}
    assert auth.authorised(Access(keys=(b"alpha", b"beta", b"gamma")), scope)
    assert seen == [b"alpha", b"beta", b"gamma"]  # no early exit on the first match


def test_health_needs_no_key():
    assert client().get("/healthz").status_code == 200


def test_body_over_the_limit_gets_413_with_and_without_content_length():
    c = client()
    headers = {"Authorization": "Bearer alpha", "Content-Type": "application/json"}
    r = c.post("/score", content=b"x" * 101, headers=headers)
    assert r.status_code == 413 and error_of(r)["code"] == "body_too_large" and "100" in error_of(r)["message"]
    r = c.post("/score", content=iter([b"x" * 60, b"x" * 60]), headers=headers)  # chunked, no length
    assert r.status_code == 413
    assert c.post("/score", content=iter([b"x" * 50, b"x" * 50]), headers=headers).json() == {"bytes": 100}


def test_chunked_body_is_counted_across_messages():
    messages = iter([{"type": "http.request", "body": b"x" * 40, "more_body": True}] * 3
                    + [{"type": "http.request", "body": b"", "more_body": False}])

    async def receive():
        return next(messages)

    assert asyncio.run(read_body(receive, 100)) is None


def test_a_body_slower_than_the_limit_gets_408_not_504():
    messages = [{"type": "http.request", "body": b'{"customer_ids": [', "more_body": True}]
    sent = []

    async def receive():
        if messages:
            return messages.pop()
        await asyncio.sleep(60)  # the rest never comes
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    guard = Guard(APP, access=Access(keys=(b"alpha",), body_seconds=0.2))
    scope = {"type": "http", "method": "POST", "path": "/score", "client": ("127.0.0.1", 1),
             "headers": [(b"authorization", b"Bearer alpha"), (b"content-type", b"application/json")]}
    asyncio.run(asyncio.wait_for(guard(scope, receive, send), 5))
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
    error = json.loads(sent[1]["body"])["error"]
    assert error["code"] == "request_timeout" and "0.2 seconds" in error["message"]


def test_non_json_body_gets_415():
    r = client().post("/score", data={"a": "b"}, headers={"Authorization": "Bearer alpha"})
    assert r.status_code == 415 and error_of(r)["code"] == "unsupported_media_type"


def test_errors_of_the_app_are_rewritten_into_our_format():
    c = client()
    r = c.get("/boom", headers={"Authorization": "Bearer alpha"})
    assert r.status_code == 500 and error_of(r)["code"] == "internal"
    r = c.get("/nowhere", headers={"Authorization": "Bearer alpha"})
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    assert int(r.headers["content-length"]) == len(r.content)


def test_open_mode_answers_loopback_clients_only():
    c = TestClient(Guard(APP, access=Access(keys=(), open=True)), client=("127.0.0.1", 5000))
    assert c.post("/score", json={}).status_code == 200
    far = TestClient(Guard(APP, access=Access(keys=(), open=True)), client=("10.1.2.3", 5000))
    assert far.post("/score", json={}).status_code == 403


def test_parse_keys_accepts_commas_lines_and_comments():
    assert parse_keys("a, b\n# note\n\nc\n") == ["a", "b", "c"]


def test_refuses_to_start_without_a_key_or_open_off_loopback():
    with pytest.raises(AccessError, match="no API key"):
        check_access(keys=[], open_=False, host="127.0.0.1")
    with pytest.raises(AccessError, match="loopback"):
        check_access(keys=[], open_=True, host="0.0.0.0")
    check_access(keys=[], open_=True, host="localhost")
    check_access(keys=["k"], open_=False, host="0.0.0.0")


@pytest.fixture
def access_of(tmp_path):
    """The access of these variables only, with CHURNCLV_HOME in an empty folder unless they name one."""
    empty = tmp_path / "empty-home"
    empty.mkdir()
    return lambda environ: Access.from_settings(Settings.load({"CHURNCLV_HOME": str(empty), **environ}))


A, B, FROM_FILE, LOCAL = "a" * 16, "b" * 20, "from-file-0123456789", "local-key-0123456789"


def test_access_from_the_settings_reads_env_and_key_file(tmp_path, access_of):
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# ours\n{FROM_FILE}\n")
    access = access_of({"CHURNCLV_API_KEYS": f"{A},{B}", "CHURNCLV_API_KEYS_FILE": str(keys)})
    assert access.keys == (A.encode(), B.encode(), FROM_FILE.encode()) and not access.open
    assert access.max_body_bytes == 8 * 1024 * 1024
    with pytest.raises(SettingsError, match="CHURNCLV_API_KEYS_FILE=.*missing.*existing file"):
        access_of({"CHURNCLV_API_KEYS_FILE": str(tmp_path / "missing")})
    with pytest.raises(AccessError, match="loopback"):  # open needs BENTOML_HOST on loopback; default 0.0.0.0
        access_of({"CHURNCLV_OPEN": "1"})
    assert access_of({"CHURNCLV_OPEN": "1", "BENTOML_HOST": "127.0.0.1"}).open
    assert access_of({"CHURNCLV_API_KEYS": A, "CHURNCLV_MAX_BODY_BYTES": "2048"}).max_body_bytes == 2048


def test_the_local_key_is_used_when_no_file_is_named(tmp_path, access_of):
    with pytest.raises(AccessError, match="no API key"):
        access_of({"CHURNCLV_HOME": str(tmp_path)})
    (tmp_path / ".churnclv_api_key").write_text(f"{LOCAL}\n")
    assert access_of({"CHURNCLV_HOME": str(tmp_path)}).keys == (LOCAL.encode(),)


def test_keys_set_in_the_environment_revoke_the_local_key(tmp_path, access_of):
    (tmp_path / ".churnclv_api_key").write_text(f"{LOCAL}\n")
    access = access_of({"CHURNCLV_HOME": str(tmp_path), "CHURNCLV_API_KEYS": A})
    assert access.keys == (A.encode(),)
    c = TestClient(Guard(APP, access=access))
    assert c.post("/score", json={}, headers={"Authorization": f"Bearer {LOCAL}"}).status_code == 401
    assert c.post("/score", json={}, headers={"Authorization": f"Bearer {A}"}).status_code == 200
    named = tmp_path / "keys.txt"
    named.write_text(FROM_FILE)
    assert access_of({"CHURNCLV_HOME": str(tmp_path), "CHURNCLV_API_KEYS_FILE": str(named)}).keys == (
        FROM_FILE.encode(),)


def test_a_short_key_is_refused_with_one_line_naming_where_it_was_set(tmp_path, access_of):
    for keys in ("x", f"{A},short-key"):
        with pytest.raises(AccessError, match=r"^CHURNCLV_API_KEYS: 1 API key\(s\) shorter than 16 characters") as e:
            access_of({"CHURNCLV_API_KEYS": keys})
        assert "\n" not in str(e.value) and "short-key" not in str(e.value)
    named = tmp_path / "keys.txt"
    named.write_text("tiny\n")
    with pytest.raises(AccessError, match=r"^CHURNCLV_API_KEYS_FILE .*keys.txt: 1 API key"):
        access_of({"CHURNCLV_API_KEYS_FILE": str(named)})
    (tmp_path / ".churnclv_api_key").write_text("tiny\n")
    with pytest.raises(AccessError, match=r"^the local key file .*\.churnclv_api_key: 1 API key"):
        access_of({"CHURNCLV_HOME": str(tmp_path)})


def test_the_key_file_is_read_once_when_the_access_is_built(tmp_path, access_of):
    keys = tmp_path / "keys.txt"
    keys.write_text(f"first-{A}\n")
    access = access_of({"CHURNCLV_API_KEYS_FILE": str(keys)})
    keys.write_text(f"second-{A}\n")
    c = TestClient(Guard(APP, access=access))
    assert c.post("/score", json={}, headers={"Authorization": f"Bearer first-{A}"}).status_code == 200
    assert c.post("/score", json={}, headers={"Authorization": f"Bearer second-{A}"}).status_code == 401
    keys.unlink()  # nothing reads it again
    built = []
    Guard(APP, access=lambda: built.append(access) or access)
    assert built == [access]  # a function is called once, when the middleware is built


def test_an_unreadable_key_file_is_a_message(tmp_path, access_of):
    keys = tmp_path / "keys.txt"
    keys.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(AccessError, match="cannot read the API keys file"):
        access_of({"CHURNCLV_API_KEYS_FILE": str(keys)})


def test_a_key_file_gives_keys_names_and_roles_and_a_bare_key_keeps_every_right(tmp_path):
    from churnclv.contract.settings import Settings
    from churnclv.serving.auth import Identity, allows, key_name, required_role

    keys = tmp_path / "keys"
    keys.write_text("# who may call\nold-key-0123456789abcdef\nread-key-0123456789 name=bi-dashboard role=read\n"
                    "plan-key-0123456789 role=plan name=crm\n")
    access = Access.from_settings(Settings.load({"CHURNCLV_API_KEYS_FILE": str(keys)}))
    assert access.identities == (Identity(key_name("old-key-0123456789abcdef"), "admin"),
                                 Identity("bi-dashboard", "read"), Identity("crm", "plan"))
    assert "old-key" not in access.identities[0].name  # a name, never the key
    assert [required_role(m, p) for m, p in [("POST", "/score"), ("POST", "/customers"), ("POST", "/campaigns"),
                                             ("GET", "/app/plan.csv"), ("POST", "/reload"),
                                             ("DELETE", "/customers/C1"), ("POST", "/suppressions")]] == \
        ["read", "read", "plan", "plan", "admin", "admin", "admin"]
    assert allows(Identity("x", "plan"), "read") and not allows(Identity("x", "plan"), "admin")
    keys.write_text("a-key-0123456789abcdef role=owner\n")
    with pytest.raises(AccessError, match="role 'owner' is not one of read, plan, admin"):
        Access.from_settings(Settings.load({"CHURNCLV_API_KEYS_FILE": str(keys)}))
