"""A throwaway PostgreSQL cluster for the tests: Debian's ``postgresql`` binaries, ``initdb`` and ``pg_ctl``
into a temporary folder, listening on a free loopback port, trust authentication, removed afterwards.

PostgreSQL refuses to run as root: as root, the cluster runs as the ``postgres`` user the Debian package
creates (else ``nobody``), in a folder of its own under the system's temporary directory (pytest's
folders are private to root). ``make test`` installs the package when it is missing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.ports import free_port

#: Where Debian puts each major version's binaries.
DEBIAN_BINARIES = Path("/usr/lib/postgresql")


def binaries() -> Path | None:
    """The folder of the newest installed ``initdb`` and ``pg_ctl`` (Debian's layout, else the PATH)."""
    found = sorted((p for p in DEBIAN_BINARIES.glob("*/bin") if (p / "initdb").is_file() and (p / "pg_ctl").is_file()),
                   key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if found:
        return found[-1]
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    return Path(initdb).parent if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent else None


def _runner() -> tuple[dict, object | None]:
    """Keyword arguments of ``subprocess.run`` that run as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return {}, None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        user = pwd.getpwnam("nobody")

    def demote() -> None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return {"preexec_fn": demote, "env": {**os.environ, "HOME": user.pw_dir or "/tmp", "LC_ALL": "C"}}, user


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a cluster; yield the SQLAlchemy URL of its ``postgres`` database; stop and remove it."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL's initdb and pg_ctl are not installed: apt-get install postgresql "
                           "(make test does it when missing)")
    base = Path(tempfile.mkdtemp(prefix="churnclv-pg-"))
    kwargs, user = _runner()
    if user is not None:
        os.chown(base, user.pw_uid, user.pw_gid)
    data, port = base / "data", free_port()
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120, **kwargs}
    started = False
    try:
        subprocess.run([bin_dir / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync",
                        "--no-instructions"], **run)
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off " \
                  "-c full_page_writes=off -c max_connections=200"
        subprocess.run([bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", base / "server.log", "-w", "-t", "60",
                        "start"], **run)
        started = True
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    except subprocess.CalledProcessError as exc:
        log = base / "server.log"
        raise RuntimeError(f"the throwaway PostgreSQL cluster did not start: {exc.stderr or exc.stdout}"
                           + (log.read_text()[-2000:] if log.exists() else "")) from None
    finally:
        if started:
            subprocess.run([bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                           **{**run, "check": False})
        shutil.rmtree(base, ignore_errors=True)
