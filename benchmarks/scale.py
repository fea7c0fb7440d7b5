"""Benchmark: the real CLI (`features`, `train`, `score`) on generated logs of 100k, 1M (and 3M) customers.

For each size the log is generated once (``python -m churnclv.seeds.generate``, ~6.3 transactions a customer over
two years) and kept in ``--workdir`` as CSV, one Parquet file and a Parquet dataset (one file a month).
Each command runs in its own process with a fresh ``CHURNCLV_HOME`` (a local MLflow store), single-process
on the Parquet file and, where the CLI has the option, with ``--dask local`` (a ``distributed.LocalCluster``
of 2 workers) on the Parquet dataset. For each run: wall time, CPU time (user + sys of the command and every
process it waited for), the peak resident size of the largest process (``ru_maxrss``) and the peak of the
sum over the command's process tree (sampled every 0.2 s with psutil; the Dask workers count there), and
the 1-minute load average before it started, because this machine is shared.

Prints one table and writes it as markdown (``--markdown``) for the README.

    .venv/bin/python benchmarks/scale.py                       # 100k and 1M
    .venv/bin/python benchmarks/scale.py --sizes 100k,1m,3m    # 3M needs about 12 GB free
    .venv/bin/python benchmarks/scale.py --sizes 100k --modes single --steps train
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
STEPS = ("features", "train", "score")
AS_OF = "2025-12-31"  # the generator's last day: every command uses the same as-of day
#: CSV -> one Parquet file and a dataset of a file a month, in a child process: this process stays small,
#: because a child's ``ru_maxrss`` starts from its parent's resident size at the fork.
CONVERT = """
import sys, shutil, pathlib, pandas as pd
csv, parquet, dataset = sys.argv[1:]
frame = pd.read_csv(csv, engine="pyarrow", dtype={"customer_id": "str", "order_id": "str"})
frame.to_parquet(parquet, index=False)
shutil.rmtree(dataset, ignore_errors=True)
pathlib.Path(dataset).mkdir()
month = pd.to_datetime(frame["timestamp"]).dt.strftime("%Y-%m")
for key, part in frame.groupby(month, sort=True):
    part.to_parquet(f"{dataset}/{key}.parquet", index=False)
"""


def parse_size(text: str) -> int:
    """``100k`` -> 100_000, ``1m`` -> 1_000_000, ``250000`` -> 250_000."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([km]?)", text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 100k or 1m")
    return int(float(match[1]) * {"": 1, "k": 1_000, "m": 1_000_000}[match[2]])


def label(customers: int) -> str:
    return f"{customers // 1_000_000}M" if customers % 1_000_000 == 0 else f"{customers // 1_000}k"


@dataclass(frozen=True)
class Log:
    """One generated log in its three forms."""

    customers: int
    csv: Path
    parquet: Path
    dataset: Path  # a folder of Parquet files, one a month

    @property
    def transactions(self) -> int:
        code = "import sys, pyarrow.parquet as pq; print(pq.ParquetFile(sys.argv[1]).metadata.num_rows)"
        return int(subprocess.run([PYTHON, "-c", code, str(self.parquet)], capture_output=True, text=True,
                                  check=True).stdout)


def generate(customers: int, workdir: Path) -> Log:
    """The log of ``customers`` generated customers (seed 0), made once and reused."""
    name = label(customers).lower()
    log = Log(customers, workdir / f"tx{name}.csv", workdir / f"tx{name}.parquet", workdir / f"tx{name}_dataset")
    if not log.csv.exists():
        print(f"generating {customers:,} customers -> {log.csv}", flush=True)
        subprocess.run([PYTHON, "-m", "churnclv.seeds.generate", "--customers", str(customers), "--seed", "0",
                        "--out", str(log.csv)], cwd=ROOT, check=True)
    if not log.parquet.exists() or not log.dataset.exists():
        subprocess.run([PYTHON, "-c", CONVERT, str(log.csv), str(log.parquet), str(log.dataset)], check=True)
    return log


@dataclass
class Run:
    size: str
    mode: str
    step: str
    wall_s: float = float("nan")
    cpu_s: float = float("nan")
    max_rss_gb: float = float("nan")  # the largest single process (ru_maxrss)
    tree_rss_gb: float = float("nan")  # sampled peak of the sum over the process tree
    load: float = float("nan")
    note: str = ""


def _tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def measure(command: list[str], *, env: dict, log_path: Path) -> tuple[float, float, float, float, int]:
    """Run ``command``; return (wall s, CPU s, max RSS GB, sampled tree RSS GB, exit code)."""
    with open(log_path, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        peak, done = [0], threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _tree_rss(proc.pid))
                done.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's usage, its reaped descendants included
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    return (wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024**2, peak[0] / 1024**3,
            proc.returncode)


def has_dask_option() -> tuple[bool, str]:
    """Whether ``churnclv train/score/features`` take ``--dask`` (another change adds it)."""
    for step in STEPS:
        text = subprocess.run([PYTHON, "-m", "churnclv", step, "--help"], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}).stdout
        if "--dask" not in text:
            return False, f"`churnclv {step}` has no --dask option in this checkout"
    return True, ""


def command(step: str, log: Log, mode: str, home: Path) -> list[str]:
    source = str(log.dataset if mode == "dask" else log.parquet)
    base = [PYTHON, "-m", "churnclv", step, "-t", source, "--as-of", AS_OF]
    suffix = "" if mode == "dask" else ".parquet"  # with --dask, outputs are folders of Parquet parts
    extra = {"features": ["--out", str(home / "out" / f"features{suffix}")],
             "train": ["--dataset", f"scale-{label(log.customers)}"],
             "score": ["--out", str(home / "scores" / f"latest{suffix}")]}[step]
    return base + extra + (["--dask", "local"] if mode == "dask" else [])


def run_size(log: Log, *, modes: list[str], steps: list[str], workdir: Path) -> list[Run]:
    runs = []
    for mode in modes:
        home = Path(tempfile.mkdtemp(prefix=f"scale-{label(log.customers)}-{mode}-", dir=workdir))
        env = {**os.environ, "CHURNCLV_HOME": str(home), "COLUMNS": "160", "NO_COLOR": "1"}
        env.pop("MLFLOW_TRACKING_URI", None)
        trained = True
        for step in steps:
            run = Run(label(log.customers), mode, step, load=os.getloadavg()[0])
            if step == "score" and not trained:
                run.note = "skipped: no trained model"
                runs.append(run)
                continue
            print(f"{run.size} {mode} {step} ...", flush=True)
            wall, cpu, rss, tree, code = measure(command(step, log, mode, home), env=env,
                                                 log_path=home / f"{step}.log")
            run.wall_s, run.cpu_s, run.max_rss_gb, run.tree_rss_gb = wall, cpu, rss, tree
            if code != 0:
                run.note = f"exit {code}: see {home / f'{step}.log'}"
                trained = trained and step != "train"
            print(f"  wall {wall:.1f} s, CPU {cpu:.1f} s, max RSS {rss:.2f} GB, tree {tree:.2f} GB "
                  f"(load {run.load:.2f}) {run.note}", flush=True)
            runs.append(run)
    return runs


def table_rows(runs: list[Run], sizes: dict[str, Log]) -> list[list[str]]:
    rows = []
    for r in runs:
        log = sizes[r.size]
        rows.append([f"{log.customers:,} / {log.transactions / 1e6:.1f}M", r.mode, r.step,
                     *(f"{v:.1f}" if v == v else "" for v in (r.wall_s, r.cpu_s)),
                     *(f"{v:.2f}" if v == v else "" for v in (r.max_rss_gb, r.tree_rss_gb, r.load)), r.note])
    return rows


HEADER = ["customers / transactions", "mode", "command", "wall s", "CPU s", "peak RSS GB, largest process",
          "peak RSS GB, all processes", "load before", "note"]


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def print_table(rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"churnclv at scale ({os.cpu_count()} cores; CPU = user + sys of the command's processes)")
    for i, name in enumerate(HEADER):
        table.add_column(name, justify="left" if i in (0, 1, 2, len(HEADER) - 1) else "right")
    for row in rows:
        table.add_row(*row)
    Console(width=max(shutil.get_terminal_size().columns, 170)).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1m", help="comma-separated customer counts (100k, 1m, 3m)")
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated: features, train, score")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "churnclv-scale",
                        help="where the logs are generated (kept between runs) and each run's CHURNCLV_HOME goes")
    parser.add_argument("--modes", default="single,dask",
                        help="comma-separated: single (one process, the Parquet file), dask (--dask local, the dataset)")
    parser.add_argument("--markdown", type=Path, default=None, help="write the table as markdown here")
    args = parser.parse_args()

    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = set(steps) - set(STEPS)
    if unknown:
        parser.error(f"unknown step(s) {', '.join(sorted(unknown))}; use {', '.join(STEPS)}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(modes) - {"single", "dask"}:
        parser.error(f"unknown mode(s) in {args.modes!r}; use single, dask")
    if "dask" in modes:
        ok, why = has_dask_option()
        if not ok:
            modes.remove("dask")
            print(f"Dask rows skipped: {why}.", flush=True)
    logs, runs = {}, []
    for customers in sizes:
        log = generate(customers, args.workdir)
        logs[label(customers)] = log
        runs += run_size(log, modes=modes, steps=steps, workdir=args.workdir)
    rows = table_rows(runs, logs)
    print_table(rows)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(rows))
        print(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
