"""Ports for the servers the tests start, free of races between the suite's workers.

A port the kernel hands out (bind to port 0) is from the ephemeral range (32768–60999 on Linux), where every
outgoing connection and BentoML's own helper ports also come from, and two xdist workers asking at the same moment
may be given the same one: a server started on it could find it taken, and its readiness check answered by another
test's server. Each worker instead takes ports from its own block below that range, in turn, skipping any in use.
"""

from __future__ import annotations

import itertools
import os
import socket

#: The first port of worker gw0's block; each worker's block is BLOCK ports long.
FIRST, BLOCK = 20000, 500
_next = itertools.count()


def worker_index() -> int:
    """0 for gw0 (and for a run without xdist), 1 for gw1, …"""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(name[2:]) if name[2:].isdigit() else 0


def free_port() -> int:
    """A loopback port of this worker's block that nothing listens on or holds (tried in turn, wrapping round)."""
    start = FIRST + BLOCK * (worker_index() % 24)
    for _ in range(BLOCK):
        port = start + next(_next) % BLOCK
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {start}–{start + BLOCK - 1}")
