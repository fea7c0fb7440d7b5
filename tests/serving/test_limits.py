"""Rate limits (serving.limits): per API key and per client address for failed authentications, held in one
SQLite file for every worker; a real server of two workers, clients on several loopback addresses."""

from __future__ import annotations

import re
import threading
import time

import httpx
import pytest

from churnclv.contract.settings import Settings, SettingsError
from churnclv.serving.auth import key_name
from churnclv.serving.limits import RateLimits, rate
from tests.serving.test_server import KEY, running_server

KEY2 = "second-real-key-0123456789"
LIMIT, FAILURES = 20, 5


def client(address: str) -> httpx.Client:
    """A client whose connections leave from ``address`` (any of 127.0.0.0/8 reaches the server on 127.0.0.1)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def retry_after(response: httpx.Response) -> int:
    value = int(response.headers["retry-after"])
    assert 1 <= value <= 60
    return value


def in_one_window(seconds: float = 15.0) -> None:
    """Wait for the next minute window when fewer than ``seconds`` are left of this one: the limits' windows turn
    on the minute (limits' window keys), and a request just after a turn is let in by the sliding count."""
    left = 60.0 - time.time() % 60.0
    if left < seconds:
        time.sleep(left + 0.1)


def refusals(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return {m[0]: float(m[1]) for m in re.findall(r'^churnclv_refusals_total\{reason="(\w+)"\} (\S+)$', text, re.M)}


@pytest.fixture(scope="module")
def limited(trained_home, tmp_path_factory):
    folder = tmp_path_factory.mktemp("limited")
    with running_server(trained_home.home, folder, workers=2, CHURNCLV_API_KEYS=f"{KEY},{KEY2}",
                        CHURNCLV_RATE_LIMIT=f"{LIMIT}/minute", CHURNCLV_AUTH_FAILURE_LIMIT=f"{FAILURES}/minute") as url:
        yield url, folder / "rate-limits.sqlite"


def test_a_key_over_its_limit_gets_429_with_retry_after_while_another_key_is_served(limited):
    url, store = limited
    answers: list[httpx.Response] = []
    in_one_window()  # the burst and the checks after it in one minute window

    def send(n: int) -> None:  # a new connection per request: the two workers share the requests
        for _ in range(n):
            with client("127.0.0.1") as c:
                answers.append(c.get(f"{url}/model", headers=bearer(KEY)))

    threads = [threading.Thread(target=send, args=(15,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = [r.status_code for r in answers]
    # 20 a minute for the whole service (a window boundary may let one more through), not 20 per worker
    assert LIMIT <= statuses.count(200) <= LIMIT + 1 and statuses.count(429) == 45 - statuses.count(200), statuses
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.json()["error"]["code"] == "rate_limited" and key_name(KEY) in refused.json()["error"]["message"]
    retry_after(refused)
    with client("127.0.0.1") as c:
        assert c.get(f"{url}/model", headers=bearer(KEY2)).status_code == 200
        assert c.get(f"{url}/model", headers=bearer(KEY)).status_code == 429
    # the count is in the shared file, as any other process of the server reads it
    shared = RateLimits(store, per_key=rate(f"{LIMIT}/minute"), failures=None)
    assert shared.limiter.get_window_stats(shared.per_key, "key", key_name(KEY)).remaining == 0
    assert shared.limiter.get_window_stats(shared.per_key, "key", key_name(KEY2)).remaining == LIMIT - 1
    assert refusals(url)["rate_limited"] >= 45 - LIMIT - 1
    started = (store.parent / "server.log").read_text()
    assert f"Rate limits: {LIMIT} per 1 minute per API key, {FAILURES} per 1 minute failed authentications" in started


def test_a_burst_of_wrong_keys_from_one_address_is_locked_out_and_counted_others_are_served(limited):
    url, _ = limited
    in_one_window()
    before = refusals(url)
    with client("127.0.0.3") as guesser:
        answers = [guesser.get(f"{url}/model", headers=bearer(f"guess-{i:04d}-0123456789")) for i in range(12)]
        statuses = [r.status_code for r in answers]
        assert statuses[:FAILURES] == [401] * FAILURES and set(statuses[FAILURES + 1:]) == {429}, statuses
        locked = answers[-1]
        assert locked.json()["error"]["code"] == "auth_locked_out" and "127.0.0.3" in locked.json()["error"]["message"]
        assert f"retry after {retry_after(locked)} s" in locked.json()["error"]["message"]
        # locked out whatever the key: a right key from that address waits too (guessing gains nothing)
        assert guesser.get(f"{url}/model", headers=bearer(KEY2)).status_code == 429
        assert guesser.get(f"{url}/healthz").status_code == 200  # probes need no key and are never refused
    with client("127.0.0.2") as other:
        assert other.get(f"{url}/model", headers=bearer(KEY2)).status_code == 200
        assert other.get(f"{url}/model", headers=bearer("wrong-but-first-0123456789")).status_code == 401
    after = refusals(url)
    assert after["unauthorized"] - before.get("unauthorized", 0) >= FAILURES + 1
    assert after["auth_locked_out"] - before.get("auth_locked_out", 0) >= 12 - FAILURES


def test_limits_are_settings_named_in_one_line(tmp_path):
    settings = Settings.load({"CHURNCLV_HOME": str(tmp_path), "CHURNCLV_RATE_LIMIT": "50 per 10 seconds",
                              "CHURNCLV_AUTH_FAILURE_LIMIT": "off"})
    limits = RateLimits.from_settings(settings)
    assert (limits.per_key.amount, limits.per_key.get_expiry(), limits.failures) == (50, 10, None)
    assert limits.path == tmp_path.resolve() / "run" / "rate-limits.sqlite"
    assert RateLimits.from_settings(Settings.load({"CHURNCLV_RATE_LIMIT": "off",
                                                   "CHURNCLV_AUTH_FAILURE_LIMIT": "off"})) is None
    with pytest.raises(SettingsError, match=r"^CHURNCLV_RATE_LIMIT='many' is not allowed \(not a rate\)"):
        Settings.load({"CHURNCLV_RATE_LIMIT": "many"})
