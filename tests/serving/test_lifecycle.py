"""``churnclv serve`` as a supervisor runs it: SIGTERM drains, SIGKILL leaves no orphan, TLS, plain HTTP off loopback.

Real processes on 127.0.0.1 (:mod:`serving.lifecycle`). Every process a test started is looked up by id
(psutil, from the main process down) and killed by id at the end if it is still there.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from churnclv.contract import ChurnclvError
from churnclv.serving.cli_serve import SSL_CIPHERS, plan_server
from churnclv.serving.lifecycle import EXIT_MARGIN, watch_parent
from tests.ports import free_port
from tests.serving.test_server import BEARER, KEY, server_env
from tests.serving.test_service import history

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
GRACE = 3


@dataclass
class Started:
    proc: subprocess.Popen
    url: str
    port: int
    log: Path
    processes: list = field(default_factory=list)  # the main process and every process under it, once ready

    def output(self) -> str:
        return self.log.read_text()


def wait_ready(proc: subprocess.Popen, url: str, log: Path, *, seconds: float = 120, verify=True) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2, verify=verify).status_code == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"not ready in {seconds} s:\n{log.read_text()}")


def tree(pid: int) -> list[psutil.Process]:
    main = psutil.Process(pid)
    return [main, *main.children(recursive=True)]


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    def running(p):
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False
    return [p for p in processes if running(p)]


def port_free(port: int) -> bool:
    """Nothing listens on the port, and a server could bind it again."""
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def started(command: list[str], env: dict, tmp_path: Path, port: int, *, scheme: str = "http", verify=True,
            ready_seconds: float = 120):
    log = tmp_path / "main.log"
    with log.open("w") as out:
        proc = subprocess.Popen(command, env={**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}, cwd=tmp_path,
                                stdout=out, stderr=subprocess.STDOUT)
    run = Started(proc, f"{scheme}://127.0.0.1:{port}", port, log)
    try:
        wait_ready(proc, run.url, log, seconds=ready_seconds, verify=verify)
        run.processes = tree(proc.pid)
        yield run
    finally:
        for p in alive(run.processes) if run.processes else []:
            with contextlib.suppress(psutil.Error):
                p.kill()
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def serve_command(port: int, *extra: str) -> list[str]:
    return [str(BIN / "churnclv"), "serve", "--host", "127.0.0.1", "--port", str(port), *extra]


class Stream:
    """Threads posting a body to /score_transactions, a new connection each time, until stopped; each
    request's time of connection (the server's from then on), end and outcome (the status, or the error)."""

    def __init__(self, url: str, body: dict, threads: int = 6, headers: dict = BEARER):
        self.port = int(url.rsplit(":", 1)[1])
        self.body = json.dumps(body).encode()
        self.headers = {**headers, "Content-Type": "application/json", "Connection": "close"}
        self.results: list[tuple[float, float, int | str]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self) -> None:
        while not self.stop.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                connection.connect()
            except OSError:
                continue  # refused: the server is not taking connections any more
            connected = time.monotonic()
            try:
                connection.request("POST", "/score_transactions", body=self.body, headers=self.headers)
                response = connection.getresponse()
                response.read()
                outcome: int | str = response.status
            except (OSError, http.client.HTTPException) as exc:
                outcome = type(exc).__name__
            finally:
                connection.close()
            self.results.append((connected, time.monotonic(), outcome))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=40)


class Refusals:
    """Connects once every 20 ms; whether a connection was refused while a worker was still running."""

    def __init__(self, port: int, workers: list):
        self.port, self.workers, self.refused_while_draining = port, workers, False
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.done.is_set():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
            except ConnectionRefusedError:
                self.refused_while_draining = bool(alive(self.workers))
                return
            except OSError:
                pass
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def posted(seed_transactions, trained_home) -> dict:
    """Six customers' histories in one body: a request that takes a little while."""
    ids = seed_transactions["customer_id"].drop_duplicates().iloc[:6]
    rows = [r for cid in ids for r in history(seed_transactions, cid, trained_home.as_of)]
    return {"as_of": f"{trained_home.as_of:%Y-%m-%d}", "transactions": rows}


def stop(run: Started, sig: int, grace: float) -> tuple[float, float]:
    """Send ``sig`` to the main process only (as systemd, docker and Kubernetes do); when it was sent and
    when the main process had ended."""
    signalled = time.monotonic()
    run.proc.send_signal(sig)
    run.proc.wait(timeout=grace + 10)
    return signalled, time.monotonic()


def check_drained(run: Started, stream: Stream, signalled: float, ended: float, sig: int, grace: float = GRACE) -> None:
    code = run.proc.returncode
    assert code == 0 and "stopped cleanly" in run.output(), run.output()
    assert f"{signal.Signals(sig).name}: stopped cleanly" in run.output()
    assert ended - signalled < grace + 1, ended - signalled
    left = alive(run.processes)
    assert left == [], left
    assert port_free(run.port)
    before = [r for r in stream.results if r[0] < signalled]  # connected before the signal: in flight
    in_flight = [r for r in before if r[1] > signalled]
    failed = [r for r in before if r[2] != 200]
    assert before and failed == [], (signalled, len(before), failed[:5])
    after = [r for r in stream.results if r[0] >= signalled]
    assert all(r[2] != 500 for r in after)
    print(f"{len(before)} requests before the signal, {len(in_flight)} in flight at it, all 200; "
          f"stopped {ended - signalled:.2f} s after it")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_drains_the_requests_in_flight_and_stops_every_process(trained_home, tmp_path, posted, sig):
    port = free_port()
    env = server_env(CHURNCLV_HOME=str(trained_home.home), CHURNCLV_API_KEYS=KEY)
    with started(serve_command(port, "--grace-seconds", str(GRACE)), env, tmp_path, port) as run:
        assert len(run.processes) >= 4  # churnclv, the arbiter, two workers
        idle = socket.create_connection(("127.0.0.1", port))  # no request yet: it gets a second to send one
        probe = Refusals(port, run.processes[2:])
        with Stream(run.url, posted) as stream, probe:
            time.sleep(1.5)
            signalled, ended = stop(run, sig, GRACE)
        idle.close()
        check_drained(run, stream, signalled, ended, sig)
        assert probe.refused_while_draining, "new connections were not refused while the workers drained"


def check_no_orphans(run: Started) -> None:
    run.proc.kill()
    killed = time.monotonic()
    run.proc.wait()
    while time.monotonic() < killed + 5 and (alive(run.processes) or not port_free(run.port)):
        time.sleep(0.05)
    assert alive(run.processes) == [] and port_free(run.port), (alive(run.processes), run.output())
    print(f"no process left, the port free {time.monotonic() - killed:.2f} s after SIGKILL")


@pytest.mark.slow
def test_sigkill_of_the_main_process_leaves_no_server_behind(trained_home, tmp_path):
    port = free_port()
    env = server_env(CHURNCLV_HOME=str(trained_home.home), CHURNCLV_API_KEYS=KEY)
    with started(serve_command(port), env, tmp_path, port) as run:
        check_no_orphans(run)


@pytest.mark.slow
def test_sigkill_of_the_arbiter_leaves_no_worker_behind(trained_home, tmp_path):
    """The issue's second finding: the workers of a killed BentoML server went on serving under PID 1."""
    port = free_port()
    env = server_env(CHURNCLV_HOME=str(trained_home.home), CHURNCLV_API_KEYS=KEY)
    with started(serve_command(port), env, tmp_path, port) as run:
        arbiter = psutil.Process(run.proc.pid).children()[0]
        arbiter.kill()
        killed = time.monotonic()
        while time.monotonic() < killed + 5 and (alive(run.processes[2:]) or not port_free(run.port)):
            time.sleep(0.05)
        assert alive(run.processes[2:]) == [] and port_free(run.port)
        run.proc.wait(timeout=5)  # the main process sees its server gone and ends, with an error
        assert run.proc.returncode == 2 and "the server stopped" in run.output()


@pytest.mark.slow
def test_sigkill_of_bentoml_serve_run_directly_leaves_no_worker_behind(trained_home, tmp_path):
    """``bentoml serve`` without churnclv serve (as a built Bento is often run): its workers watch the arbiter
    themselves (serving.lifecycle.watch_parent), so killing it outright frees the port."""
    port = free_port()
    env = server_env(CHURNCLV_HOME=str(trained_home.home), CHURNCLV_API_KEYS=KEY, BENTOML_HOST="127.0.0.1")
    command = [sys.executable, "-m", "bentoml", "serve", "churnclv.serving.service:ChurnCLV", "--host", "127.0.0.1",
               "--port", str(port), "--working-dir", str(REPO)]
    with started(command, env, tmp_path, port) as run:
        assert len(run.processes) >= 3  # the arbiter and its two workers
        check_no_orphans(run)


# --- make run: churnclv quickstart, which ends by serving -------------------------------------------------

def quickstart(home: Path, tmp_path: Path):
    port = free_port()
    env = server_env(CHURNCLV_HOME=str(home))
    return started([str(BIN / "churnclv"), "quickstart", "--port", str(port)], env, tmp_path, port, ready_seconds=240)


@pytest.fixture(scope="module")
def quickstart_home(trained_home, tmp_path_factory) -> Path:
    """A CHURNCLV_HOME with the seed model already trained (a copy of ``trained_home``): quickstart
    scores and serves without training again."""
    import shutil

    home = tmp_path_factory.mktemp("quickstart") / "home"
    shutil.copytree(trained_home.home, home)
    return home


@pytest.mark.slow
def test_quickstart_drains_on_sigterm(quickstart_home, tmp_path, posted):
    with quickstart(quickstart_home, tmp_path) as run:
        key = (quickstart_home / ".churnclv_api_key").read_text().strip()
        with Stream(run.url, posted, threads=4, headers={"Authorization": f"Bearer {key}"}) as stream:
            time.sleep(1.0)
            signalled, ended = stop(run, signal.SIGTERM, 10)
        check_drained(run, stream, signalled, ended, signal.SIGTERM, grace=10)  # quickstart's: the default


def run_recipe() -> str:
    """The command of the Makefile's ``run`` target (``make run``)."""
    lines = (REPO / "Makefile").read_text().split("\nrun:", 1)[1].splitlines()[1:]
    return next(line.strip() for line in lines if line.startswith("\t"))


@pytest.mark.slow
def test_make_run_leaves_no_server_behind_when_make_is_killed(quickstart_home, tmp_path):
    """``make run`` (its recipe, with a free port) killed outright: quickstart watches its parent (make)."""
    port = free_port()
    recipe = run_recipe()
    assert recipe == "$(VENV)/bin/churnclv quickstart"
    (tmp_path / "Makefile").write_text(f"VENV := {REPO / '.venv'}\nrun:\n\t{recipe} --port {port}\n")
    env = server_env(CHURNCLV_HOME=str(quickstart_home))
    with started(["make", "-s", "-f", str(tmp_path / "Makefile"), "run"], env, tmp_path, port, ready_seconds=240) as run:
        assert len(run.processes) >= 5  # make, churnclv quickstart, the arbiter, two workers
        check_no_orphans(run)


# --- TLS, and plain HTTP off loopback ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A certificate authority made here and a server certificate for 127.0.0.1 and localhost (trustme)."""
    import trustme

    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.private_key_pem.write_to_path(folder / "key.pem")
    server.cert_chain_pems[0].write_to_path(folder / "cert.pem")
    for pem in server.cert_chain_pems[1:]:
        with (folder / "cert.pem").open("ab") as f:
            f.write(pem.bytes())
    ca.cert_pem.write_to_path(folder / "ca.pem")
    return folder


@pytest.mark.slow
def test_https_with_a_certificate_made_here_serves_the_api_and_the_page(trained_home, tmp_path, certificate):
    import ssl

    port = free_port()
    trust = ssl.create_default_context(cafile=str(certificate / "ca.pem"))
    env = server_env(CHURNCLV_HOME=str(trained_home.home), CHURNCLV_API_KEYS=KEY,
                     CHURNCLV_SSL_CERTFILE=str(certificate / "cert.pem"))  # the environment, as a container sets it
    command = serve_command(port, "--ssl-keyfile", str(certificate / "key.pem"))
    with started(command, env, tmp_path, port, scheme="https", verify=trust) as run:
        assert f"on https://127.0.0.1:{port}" in run.output()
        with httpx.Client(verify=trust, timeout=10) as client:
            page = client.get(f"{run.url}/app")
            assert page.status_code == 200 and "<html" in page.text.lower()
            for name in ("app.js", "app.css"):
                assert client.get(f"{run.url}/app/static/{name}").status_code == 200, name
            overview = client.get(f"{run.url}/app/overview", headers=BEARER)
            assert overview.status_code == 200 and "http://" not in overview.text
            model = client.get(f"{run.url}/model", headers=BEARER)
            assert model.status_code == 200 and model.json()["version"] == trained_home.version
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port gets no answer
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        with pytest.raises(httpx.ConnectError):  # a client that does not trust the certificate
            httpx.get(f"{run.url}/healthz", timeout=5)
        with socket.create_connection(("127.0.0.1", port)) as raw, trust.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            assert s.version() in ("TLSv1.2", "TLSv1.3")
        old = ssl.create_default_context(cafile=str(certificate / "ca.pem"))
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        old.set_ciphers("AES128-SHA")  # TLS 1.0's CBC suites, which BentoML's default "TLSv1" would offer
        with pytest.raises(ssl.SSLError), socket.create_connection(("127.0.0.1", port)) as raw:
            old.wrap_socket(raw, server_hostname="127.0.0.1")
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(timeout=GRACE + 15) == 0


def test_plain_http_off_loopback_is_refused_in_one_line(trained_home, tmp_path):
    env = server_env(CHURNCLV_HOME=str(trained_home.home), CHURNCLV_API_KEYS=KEY)
    out = subprocess.run([str(BIN / "churnclv"), "serve", "--host", "0.0.0.0", "--port", str(free_port())], env=env,
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 2, out
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "refusing to serve plain HTTP on 0.0.0.0" in lines[0], out.stderr
    assert "--behind-proxy" in lines[0] and "--ssl-certfile" in lines[0]


def test_transport_settings_are_checked_before_the_server_starts(tmp_path, monkeypatch):
    keys = {"CHURNCLV_API_KEYS": KEY, "CHURNCLV_HOME": str(tmp_path)}
    common = dict(port=3001, model="models:/churn-clv/1", scores=None, api_keys_file=None, open_=False)
    with pytest.raises(ChurnclvError, match=r"^refusing to serve plain HTTP on 10\.0\.0\.5"):
        plan_server(host="10.0.0.5", environ=keys, **common)
    for host in ("127.0.0.1", "::1", "localhost"):
        assert not plan_server(host=host, environ=keys, **common).tls
    proxied = plan_server(host="0.0.0.0", behind_proxy=True, environ=keys, **common)
    assert proxied.env["CHURNCLV_BEHIND_PROXY"] == "1" and not proxied.tls
    assert plan_server(host="0.0.0.0", environ={**keys, "CHURNCLV_BEHIND_PROXY": "yes"}, **common).settings.behind_proxy
    (tmp_path / "c.pem").write_text("x")
    with pytest.raises(ChurnclvError, match=r"^--ssl-certfile needs --ssl-keyfile too"):
        plan_server(host="0.0.0.0", ssl_certfile=tmp_path / "c.pem", environ=keys, **common)
    (tmp_path / "k.pem").write_text("x")
    monkeypatch.chdir(tmp_path)
    tls = plan_server(host="0.0.0.0", ssl_certfile=Path("c.pem"), environ={**keys, "CHURNCLV_SSL_KEYFILE": str(tmp_path / "k.pem")},
                      **common)
    assert tls.tls and tls.url == "https://0.0.0.0:3001" and tls.env["CHURNCLV_SSL_CERTFILE"] == str(tmp_path / "c.pem")
    assert "services.churnclv.ssl.enabled=true" in tls.env["BENTOML_CONFIG_OPTIONS"] and tls.env["CHURNCLV_WATCH_PARENT"] == "1"
    with pytest.raises(ChurnclvError, match=r"^CHURNCLV_SSL_KEYFILE='/nowhere.pem' is not allowed"):
        plan_server(host="127.0.0.1", environ={**keys, "CHURNCLV_SSL_KEYFILE": "/nowhere.pem"}, **common)
    with pytest.raises(ChurnclvError, match=r"^CHURNCLV_GRACE_SECONDS='0' is not allowed"):
        plan_server(host="127.0.0.1", environ={**keys, "CHURNCLV_GRACE_SECONDS": "0"}, **common)
    assert plan_server(host="127.0.0.1", grace_seconds=30, environ=keys, **common).settings.grace_seconds == 30
    assert SSL_CIPHERS and EXIT_MARGIN < 1


def test_watch_parent_only_when_asked():
    assert watch_parent({}) is False
