"""Benchmark: the HTTP service against BentoML's own ``/healthz`` (the floor), on loopback.

Trains a model on the seed data into a temporary CHURNCLV_HOME (fast settings; or reuses
``--home`` if it already holds a champion), replaces its score table by a seeded synthetic one of
``--customers`` rows (default 1,000,000), starts the real server (``bentoml serve``) and drives it
from a separate process (wrk if installed, else an async httpx client) for ``--seconds`` per
endpoint with ``--connections`` concurrent connections. Prints requests/s, p50 and p99 of:

- ``GET /healthz`` (the floor, measured first and again last: the mean of the two), ``POST /score`` with 1 and
  with 100 random ids (a seeded pool of bodies per wrk thread),
- ``POST /score_transactions`` with one customer's 20 transactions, ``POST /prioritise`` limit 100,

each as a ratio of the floor's requests/s, whether issue 22's targets are met, plus start-up time to ready and
resident memory. Every keyed request passes the per-key rate limit (serving.limits; set above what the run sends).

    .venv/bin/python benchmarks/serving.py [--customers 1000000 --seconds 8 --connections 8 --workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SEED_CSV = REPO / "seeds" / "transactions.csv"
AS_OF = pd.Timestamp("2025-12-31")
KEY = "bench-key-0123456789abcdef"
SEGMENTS = {"new": "onboarding", "lapsed": "no_contact", "high_value_at_risk": "personal_outreach",
            "at_risk": "automated_winback", "loyal": "no_contact", "steady": "newsletter"}


def train_home(home: Path) -> str:
    """A champion trained on the seed data in ``home`` (fast settings); its version."""
    from churnclv.features import load_transactions
    from churnclv.scoring.registry import connect
    from churnclv.training.churn import BoostSettings, CutoffPlan
    from churnclv.training.jobs import run_training
    from churnclv.training.pipeline import TrainConfig
    from churnclv.training.registry import champion

    client = connect(f"sqlite:///{home / 'mlruns' / 'mlflow.db'}", home / "mlruns" / "artifacts")
    if (current := champion(client)) is not None:
        return str(current.version)
    config = TrainConfig(plan=CutoffPlan(n_cutoffs=4, step_days=28),
                         boost=BoostSettings(n_estimators=300, learning_rate=0.08, early_stopping_rounds=30))
    outcome = run_training(load_transactions(SEED_CSV), as_of=AS_OF, config=config, dataset="seed", client=client,
                           artifact_root=home / "mlruns" / "artifacts", plots_dir=home / "plots")
    return outcome.logged.version


def synthetic_scores(n: int, *, version: str, seed: int = 0) -> pd.DataFrame:
    """A score table of ``n`` customers with the batch table's columns and attrs (seeded)."""
    rng = np.random.default_rng(seed)
    churn = rng.beta(2.0, 2.5, n)
    purchases = rng.gamma(1.2, 1.0, n)
    spend = purchases * rng.lognormal(3.5, 0.6, n)
    clv = spend * rng.uniform(2.5, 4.0, n)
    segment = rng.choice(list(SEGMENTS), n, p=[0.05, 0.1, 0.05, 0.4, 0.15, 0.25])
    table = pd.DataFrame({
        "customer_id": pd.array([f"C{i:07d}" for i in range(n)], dtype="str"),
        "churn_probability": churn, "p_alive": 1.0 - churn * rng.uniform(0.5, 1.0, n),
        "expected_purchases": purchases, "expected_spend": spend, "clv": clv, "value_at_risk": churn * clv,
        "segment": segment, "recommended_action": pd.Series(segment).map(SEGMENTS).to_numpy(),
        # the 80% intervals every table written by `churnclv score` carries: whole purchases, CLV about its point
        "expected_purchases_low": np.floor(purchases * rng.uniform(0.0, 0.5, n)),
        "expected_purchases_high": np.ceil(purchases * rng.uniform(1.5, 3.0, n)),
        "clv_low": clv * rng.uniform(0.3, 0.8, n), "clv_high": clv * rng.uniform(1.3, 2.5, n),
    })
    return table


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants (Linux /proc), MiB."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            total += int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{p}/status").read_text()).group(1))
        except (OSError, AttributeError):
            pass
    return total / 1024


def start_server(home: Path, port: int, workers: int, log: Path, *,
                 access_log: bool = False) -> tuple[subprocess.Popen, float]:
    env = {**os.environ, "CHURNCLV_HOME": str(home), "CHURNCLV_API_KEYS": KEY, "BENTOML_HOST": "127.0.0.1",
           "CHURNCLV_REFRESH_SECONDS": os.environ.get("CHURNCLV_REFRESH_SECONDS", "5"), "BENTOML_DO_NOT_TRACK": "true",
           # the per-key limit is checked on every keyed request (its shared SQLite counters are part of the
           # cost measured) but set above what one key sends here
           "CHURNCLV_RATE_LIMIT": "100000000/minute", "CHURNCLV_RATE_LIMIT_STORE": str(home / "rate-limits.sqlite"),
           "BENTOML_CONFIG_OPTIONS": f"services.churnclv.workers={workers}"
                                     f" services.churnclv.logging.access.enabled={str(access_log).lower()}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "bentoml", "serve", "churnclv.serving.service:ChurnCLV", "--host",
                             "127.0.0.1", "--port", str(port), "--working-dir", str(REPO)],
                            env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    import httpx

    while time.perf_counter() - started < 120:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the server was not ready after 120 s; see {log}")


#: Request bodies a wrk thread makes at its start and then sends in turn (the random ids of each): making them per
#: request cost the client, which shares the two cores with the server, ~30 us of Lua a request.
POOL = 1000


def lua_script(body: str, n_customers: int, ids: int) -> str:
    """A wrk script posting ``body`` with ``ids`` random customer ids substituted for IDS: :data:`POOL` requests
    made when a wrk thread starts (seeded), then sent in turn."""
    make = "" if ids == 0 else f"""
  local parts = {{}}
  for i = 1, {ids} do parts[i] = string.format('"C%07d"', math.random(0, {n_customers - 1})) end
  b = string.gsub(b, "IDS", table.concat(parts, ","))"""
    return f"""math.randomseed(7)
wrk.method = "{'POST' if body else 'GET'}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {KEY}"
local requests, n = {{}}, 0
for k = 1, {POOL if ids else 1} do
  local b = {json.dumps(body)}{make}
  requests[k] = wrk.format(nil, nil, nil, b ~= "" and b or nil)
end
request = function()
  n = n % #requests + 1
  return requests[n]
end
"""


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def _parse_wrk(out: str) -> dict:
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": _ms(re.search(r"\s50%\s+(\S+)", out).group(1)), "p99": _ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
            "errors": int(errors.group(1)) if errors else 0}


def run_wrk(url: str, script: str, *, seconds: float, connections: int, clients: int = 1) -> dict:
    """``clients`` wrk processes sharing ``connections``, started 0.2 s apart.

    A BentoML worker accepts every connection waiting when it wakes up, so one wrk opening all its
    keep-alive connections at once often lands them all on one worker; staggered clients spread
    them as a real population of clients would. requests/s are summed; p50 is the request-weighted
    mean of the clients' p50s and p99 the largest of their p99s (an upper bound).
    """
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    shares = [connections // clients + (i < connections % clients) for i in range(clients)]
    procs = []
    for share in shares:
        procs.append(subprocess.Popen(["wrk", "-t1", f"-c{share}", f"-d{max(1, round(seconds))}s", "--latency", "-s",
                                       f.name, url], stdout=subprocess.PIPE, text=True))
        time.sleep(0.2)
    parts = [_parse_wrk(p.communicate()[0]) for p in procs]
    os.unlink(f.name)
    total = sum(p["rps"] for p in parts)
    return {"rps": total, "p50": sum(p["p50"] * p["rps"] for p in parts) / total,
            "p99": max(p["p99"] for p in parts), "errors": sum(p["errors"] for p in parts)}


def worker_split(log: Path, start: int) -> str:
    """Share of the requests logged since byte ``start`` that each worker answered."""
    with log.open("rb") as f:
        f.seek(start)
        workers = re.findall(rb"\[entry_service:churnclv:(\d+)\]", f.read())
    counts = [workers.count(w) for w in sorted(set(workers))]
    return "/".join(f"{c / max(1, len(workers)):.0%}" for c in counts) or "-"


async def _drive(url: str, bodies: list, seconds: float, connections: int) -> dict:
    import httpx

    latencies, errors, stop = [], 0, time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=connections)) as client:
        async def worker(k: int) -> None:
            nonlocal errors
            i = k
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                body = bodies[i % len(bodies)]
                r = await (client.post(url, content=body, headers=headers) if body else client.get(url, headers=headers))
                latencies.append((time.perf_counter() - t0) * 1e3)
                errors += r.status_code >= 300
                i += connections
        await asyncio.gather(*(worker(k) for k in range(connections)))
    lat = np.asarray(latencies)
    return {"rps": len(lat) / seconds, "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
            "errors": errors}


def run_python_client(url: str, bodies: list, *, seconds: float, connections: int) -> dict:
    """The fallback load generator, in its own process so it does not share the server's GIL."""
    code = (f"import asyncio, json, sys; sys.path.insert(0, {str(REPO)!r}); from benchmarks.serving import _drive; "
            "a = json.load(sys.stdin); print(json.dumps(asyncio.run(_drive(*a))))")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps([url, bodies, seconds, connections]),
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def endpoints(n_customers: int, history: list[dict]) -> list[tuple[str, str, str, int]]:
    """(label, path, body template, number of random ids to substitute for IDS)."""
    tx = json.dumps({"as_of": f"{AS_OF:%Y-%m-%d}", "transactions": history})
    return [
        ("GET /healthz (floor)", "/healthz", "", 0),
        ("POST /score, 1 id", "/score", '{"customer_ids": [IDS]}', 1),
        ("POST /score, 100 ids", "/score", '{"customer_ids": [IDS]}', 100),
        ("POST /score_transactions, 20 tx", "/score_transactions", tx, 0),
        ("POST /prioritise, limit 100", "/prioritise", '{"limit": 100}', 0),
        ("GET /healthz (floor, again)", "/healthz", "", 0),
    ]


def one_history(rows: int = 20) -> list[dict]:
    from churnclv.features import load_transactions

    tx = load_transactions(SEED_CSV)
    counts = tx["customer_id"].value_counts()
    customer = counts.index[counts >= rows][0]
    mine = tx.loc[tx["customer_id"] == customer].head(rows)
    return [{"customer_id": r.customer_id, "timestamp": f"{r.timestamp:%Y-%m-%dT%H:%M:%S}", "amount": r.amount}
            for r in mine.itertuples()]


def measure(port: int, n_customers: int, *, seconds: float, connections: int, clients: int,
            log: Path) -> list[tuple[str, dict]]:
    rng = np.random.default_rng(11)
    results = []
    for label, path, template, ids in endpoints(n_customers, one_history()):
        url = f"http://127.0.0.1:{port}{path}"
        if shutil.which("wrk"):
            script = lua_script(template, n_customers, ids)
            run_wrk(url, script, seconds=1, connections=connections)  # warm-up
            start = log.stat().st_size
            result = run_wrk(url, script, seconds=seconds, connections=connections, clients=clients)
            result["split"] = worker_split(log, start)
        else:
            bodies = [template.replace("IDS", ",".join(f'"C{i:07d}"' for i in rng.integers(0, n_customers, ids)))
                      for _ in range(200)]
            result = {**run_python_client(url, bodies, seconds=seconds, connections=connections), "split": "-"}
        results.append((label, result))
    return results


def verdicts(results: dict[str, dict], floor: float) -> list[str]:
    """Issue 22's targets, each met or not with its figure."""
    tx, score, plan = (results["POST /score_transactions, 20 tx"], results["POST /score, 100 ids"],
                       results["POST /prioritise, limit 100"])
    said = {True: "met", False: "NOT met"}
    return [f"target /score_transactions >= 1,000 requests/s with p99 < 50 ms: {tx['rps']:,.0f}/s, p99 "
            f"{tx['p99']:.1f} ms: {said[tx['rps'] >= 1000 and tx['p99'] < 50]}",
            f"target /score 100 ids >= 50% of the floor: {score['rps'] / floor:.0%}: {said[score['rps'] >= floor / 2]}",
            f"target /prioritise >= 50% of the floor: {plan['rps'] / floor:.0%}: {said[plan['rps'] >= floor / 2]}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (the service default: 2)")
    parser.add_argument("--access-log", action="store_true", help="log every request (shows the per-worker split)")
    parser.add_argument("--clients", type=int, default=4, help="wrk processes sharing the connections, staggered")
    parser.add_argument("--home", type=Path, help="reuse this CHURNCLV_HOME (trained once, kept)")
    args = parser.parse_args()

    from churnclv.scoring.scores import write_scores

    home = args.home or Path(tempfile.mkdtemp(prefix="churnclv-bench-"))
    t0 = time.perf_counter()
    version = train_home(home)
    print(f"model v{version} in {home} ({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    meta = {"as_of": f"{AS_OF:%Y-%m-%d}", "model_uri": f"models:/churn-clv/{version}", "model_version": version,
            "trained_as_of": f"{AS_OF:%Y-%m-%d}", "horizon_days": "90"}
    path = write_scores(synthetic_scores(args.customers, version=version), home / "scores" / "latest.parquet", meta)
    print(f"score table of {args.customers:,} customers: {path.stat().st_size / 2**20:.0f} MiB "
          f"({time.perf_counter() - t0:.1f} s)")
    port = free_port()
    proc, startup = start_server(home, port, args.workers, home / "server.log", access_log=args.access_log)
    try:
        print(f"server ready in {startup:.1f} s; resident memory {rss_mib(proc.pid):.0f} MiB "
              f"({args.workers} worker(s)); load: {'wrk' if shutil.which('wrk') else 'httpx'}, "
              f"{args.connections} connections, {args.seconds:g} s per endpoint; {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.2f}")
        results = measure(port, args.customers, seconds=args.seconds, connections=args.connections,
                          clients=max(1, min(args.clients, args.connections)), log=home / "server.log")
        floor = (results[0][1]["rps"] + results[-1][1]["rps"]) / 2  # first and last: drift in the machine's load
        print(f"{'endpoint':<34}{'req/s':>9}{'of floor':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}  per worker")
        for label, r in results:
            print(f"{label:<34}{r['rps']:>9.0f}{r['rps'] / floor:>9.0%} {r['p50']:>8.2f}{r['p99']:>9.2f}{r['errors']:>9}"
                  f"  {r['split']}")
        print(f"the floor: {floor:,.0f} requests/s, the mean of /healthz measured first and last; load average "
              f"{os.getloadavg()[0]:.2f} after the run")
        for line in verdicts(dict(results), floor):
            print(line)
        print(f"resident memory after the run: {rss_mib(proc.pid):.0f} MiB")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]
    main()
