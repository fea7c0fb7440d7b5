"""Benchmark: the page at /app with a score table of a million customers, in Debian's Chromium.

Builds the serving benchmark's set-up (:mod:`benchmarks.serving`: a champion trained on the seed data, a
seeded synthetic score table of ``--customers`` rows, the real server), then measures with Playwright:

- **time to first render**: from navigating to ``/app`` (the key already in the tab's session storage)
  until the overview's content, or the contact plan's list and curve, is on the page, by the browser's
  own clock (from the navigation's start until a mutation observer sees it: no driver round trips), and
  as Playwright sees it (``goto`` until the element is visible); a fresh browser context each time
  (nothing cached), ``--repeat`` times, median and best;
- the server's time for each part and JSON endpoint the page uses (httpx, median of ``--repeat`` × 4).

    .venv/bin/python benchmarks/page.py [--customers 1000000 --repeat 7 --home DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHURNCLV_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
#: (label, section of the page, what shows that it has rendered)
VIEWS = [("sign-in form (no key: the floor, no data)", "", "#login-form"), ("overview", "overview", "#grade"),
         ("contact plan (100 contacts)", "plan", "#plan-list")]
#: (label, method, path, JSON body) of the server-side figures
CALLS = [
    ("GET /app/overview (part)", "GET", "/app/overview", None),
    ("GET /app/plan, 100 contacts (part)", "GET", "/app/plan", None),
    ("GET /app/plan, 10,000 contacts, page 400 (part)", "GET", "/app/plan?contacts=10000&page=400", None),
    ("GET /app/plan.csv, 10,000 contacts", "GET", "/app/plan.csv?contacts=10000", None),
    ("GET /app/customers, page 20,000 of everyone (part)", "GET", "/app/customers?page=20000", None),
    ("GET /segments", "GET", "/segments", None),
    ("POST /customers, offset 500,000", "POST", "/customers", {"offset": 500_000, "limit": 25}),
    ("POST /profit_curve, 1,000 points", "POST", "/profit_curve", {"points": 1000}),
]


#: Records (performance.now(), ms since the navigation started) when the element first shows.
WATCH = """new MutationObserver((_, watcher) => {{
  const el = document.querySelector({selector!r});
  if (el && el.offsetParent !== null) {{ window.__rendered = performance.now(); watcher.disconnect(); }}
}}).observe(document, {{childList: true, subtree: true, attributes: true}});"""


def first_render(browser, url: str, key: str, section: str, selector: str) -> tuple[float, float]:
    """Seconds from navigation to ``selector`` shown, by the browser's clock and as Playwright sees it, in a
    fresh context that already holds the key (none for the empty section: the sign-in form)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    if section:
        context.add_init_script(f"sessionStorage.setItem('churnclv.key', {key!r})")
    context.add_init_script(WATCH.format(selector=selector))
    page = context.new_page()
    started = time.perf_counter()
    page.goto(f"{url}/app#{section}" if section else f"{url}/app")
    page.locator(selector).wait_for(state="visible", timeout=30_000)
    elapsed = time.perf_counter() - started
    in_browser = page.wait_for_function("window.__rendered").json_value() / 1e3
    context.close()
    return in_browser, elapsed


def server_times(url: str, key: str, repeat: int) -> list[tuple[str, float, int]]:
    """(label, median seconds, response bytes) of each call in :data:`CALLS`."""
    import httpx

    out = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for label, method, path, body in CALLS:
            times, size = [], 0
            for _ in range(repeat):
                started = time.perf_counter()
                r = client.request(method, path, json=body)
                times.append(time.perf_counter() - started)
                r.raise_for_status()
                size = len(r.content)
            out.append((label, statistics.median(times), size))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (the service default: 2)")
    parser.add_argument("--home", type=Path, help="reuse this CHURNCLV_HOME (trained once, kept)")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from benchmarks.serving import AS_OF, KEY, free_port, start_server, synthetic_scores, train_home
    from churnclv.scoring.scores import write_scores

    home = args.home or Path(tempfile.mkdtemp(prefix="churnclv-page-bench-"))
    version = train_home(home)
    meta = {"as_of": f"{AS_OF:%Y-%m-%d}", "model_uri": f"models:/churn-clv/{version}", "model_version": version,
            "trained_as_of": f"{AS_OF:%Y-%m-%d}", "horizon_days": "90"}
    write_scores(synthetic_scores(args.customers, version=version), home / "scores" / "latest.parquet", meta)
    port = free_port()
    proc, startup = start_server(home, port, args.workers, home / "server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        print(f"{args.customers:,} customers, server ready in {startup:.1f} s ({args.workers} worker(s)); "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            first_render(browser, url, KEY, "overview", "#grade")  # warm-up: the browser's own start
            print(f"{'time to first render (Chromium, fresh context)':<48}{'browser: median':>16}{'best':>8}"
                  f"{'Playwright: median':>20}{'best':>8}")
            for label, section, selector in VIEWS:
                runs = [first_render(browser, url, KEY, section, selector) for _ in range(args.repeat)]
                inside, outside = [r[0] for r in runs], [r[1] for r in runs]
                print(f"{label:<48}{statistics.median(inside) * 1e3:>13.0f} ms{min(inside) * 1e3:>5.0f} ms"
                      f"{statistics.median(outside) * 1e3:>17.0f} ms{min(outside) * 1e3:>5.0f} ms")
            browser.close()
        print(f"{'server time (httpx, median)':<52}{'time':>9}{'bytes':>11}")
        for label, seconds, size in server_times(url, KEY, args.repeat * 4):
            print(f"{label:<52}{seconds * 1e3:>7.1f} ms{size:>11,}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]
    main()
