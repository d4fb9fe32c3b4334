"""A real PostgreSQL cluster for the shared servers: Debian's `postgresql-15` binaries (initdb, pg_ctl)
running a cluster in a folder (default `.ifd/postgres`) on a loopback TCP port, with the databases
`mlflow`, `optuna`, `prefect` and `predictions`, one SQLAlchemy URL each.

- Listens on 127.0.0.1 only, no Unix socket; the superuser `ifd` logs in with a generated password
  (SCRAM), kept in `<dir>/password` (mode 0600), so the cluster is not open to every local user.
- PostgreSQL refuses to run as root: under root the binaries run as the `postgres` system user (Debian
  creates it) and the data folder is owned by it; the folder's parents must be traversable by it.
- `start` is idempotent (an initialised cluster is started again, a running one left alone) and `stop`
  is a fast shutdown. `python -m ifd.servers.postgres start|stop|status|url DB [--driver asyncpg]`
  is what `make postgres`, `make mlflow-pg` and `make prefect-pg` call.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ifd.errors import IfdError

DATABASES = ("mlflow", "optuna", "prefect", "predictions")
SUPERUSER = "ifd"
DEFAULT_PORT = 5433  # not 5432: a system cluster may already hold it
PG_BIN_DIRS = ("/usr/lib/postgresql/15/bin",)


class PostgresError(IfdError):
    """The local PostgreSQL cluster could not be created, started or reached."""


def _bin(name: str) -> str:
    for d in PG_BIN_DIRS:
        if (Path(d) / name).is_file():
            return str(Path(d) / name)
    found = shutil.which(name)
    if found is None:
        raise PostgresError(f"PostgreSQL's {name} not found; install it: apt-get install -y postgresql")
    return found


def binaries_available() -> bool:
    try:
        _bin("initdb"), _bin("pg_ctl")
    except PostgresError:
        return False
    return True


@dataclass(frozen=True)
class Cluster:
    """One cluster in `root`: data in `root/data`, its settings in `root/server.json`."""

    root: Path
    port: int = DEFAULT_PORT
    durable: bool = True  # False (tests): no fsync, a crash may lose the cluster; several times faster here

    @classmethod
    def at(cls, root: Path | str, port: int | None = None) -> Cluster:
        root = Path(root).resolve()
        meta = root / "server.json"
        if port is None:
            port = json.loads(meta.read_text())["port"] if meta.is_file() else DEFAULT_PORT
        return cls(root, int(port))

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def password(self) -> str:
        path = self.root / "password"
        if not path.is_file():
            raise PostgresError(f"no cluster in {self.root}; start one: python -m ifd.servers.postgres start")
        return path.read_text().strip()

    def url(self, database: str, driver: str = "psycopg") -> str:
        """The SQLAlchemy URL of one database (`driver` psycopg for MLflow/Optuna/ifd, asyncpg for Prefect)."""
        return f"postgresql+{driver}://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _as_owner(self, *cmd: str) -> list[str]:
        if os.geteuid() != 0:
            return list(cmd)
        return ["runuser", "-u", "postgres", "--", *cmd]

    def _run(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self._as_owner(*cmd), capture_output=True, text=True, cwd="/")
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise PostgresError(f"{Path(cmd[0]).name} failed: {' | '.join(tail)}")
        return proc

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").is_file():
            return False
        proc = subprocess.run(self._as_owner(_bin("pg_ctl"), "status", "-D", str(self.data_dir)),
                              capture_output=True, text=True, cwd="/")
        return proc.returncode == 0

    def _initdb(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        pw = self.root / "password"
        if not pw.is_file():
            pw.write_text(secrets.token_urlsafe(24) + "\n")
            pw.chmod(0o600)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        pwfile = self.root / ".pwfile"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            _check_traversable(self.root)
            shutil.chown(self.data_dir, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        try:
            self._run(_bin("initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=scram-sha-256",
                      f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C.UTF-8",
                      *([] if self.durable else ["--no-sync"]))
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self, timeout_s: float = 60) -> Cluster:
        """initdb on first use, then `pg_ctl start`, then create the missing databases."""
        if not (self.data_dir / "PG_VERSION").is_file():
            self._initdb()
        (self.root / "server.json").write_text(json.dumps({"port": self.port}) + "\n")
        if not self.is_running():
            opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories=''"
            if not self.durable:
                opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            log = self.root / "postgres.log"
            log.touch()
            if os.geteuid() == 0:
                shutil.chown(log, "postgres", "postgres")
            try:
                self._run(_bin("pg_ctl"), "start", "-w", "-t", str(int(timeout_s)), "-D", str(self.data_dir),
                          "-l", str(log), "-o", opts)
            except PostgresError as exc:  # pg_ctl only says "examine the log": the log has the reason
                reason = [ln for ln in log.read_text().splitlines() if "FATAL" in ln or "ERROR" in ln][-1:]
                raise PostgresError(f"PostgreSQL did not start on 127.0.0.1:{self.port}: "
                                    f"{reason[0] if reason else exc} (log: {log})") from exc
        self._create_databases(timeout_s)
        return self

    def _create_databases(self, timeout_s: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                con = psycopg.connect(self.url("postgres").replace("postgresql+psycopg", "postgresql"),
                                      autocommit=True, connect_timeout=5)
                break
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise PostgresError(f"PostgreSQL on 127.0.0.1:{self.port} does not answer: {exc}") from exc
                time.sleep(0.3)
        with con:
            have = {r[0] for r in con.execute("SELECT datname FROM pg_database")}
            for db in DATABASES:
                if db not in have:
                    con.execute(f'CREATE DATABASE "{db}"')

    def stop(self) -> None:
        if self.is_running():
            self._run(_bin("pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data_dir))


def _check_traversable(path: Path) -> None:
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            raise PostgresError(
                f"{parent} is not traversable by the postgres user; choose a cluster folder under a "
                "world-traversable path (--dir)"
            )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ifd.servers.postgres", description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=["start", "stop", "status", "url"])
    p.add_argument("database", nargs="?", default="predictions", choices=[*DATABASES, "postgres"])
    p.add_argument("--dir", default=os.environ.get("IFD_POSTGRES_DIR", ".ifd/postgres"))
    p.add_argument("--port", type=int, default=int(os.environ["IFD_POSTGRES_PORT"])
                   if "IFD_POSTGRES_PORT" in os.environ else None)
    p.add_argument("--driver", default="psycopg", choices=["psycopg", "asyncpg"])
    args = p.parse_args(argv)
    cluster = Cluster.at(args.dir, args.port)
    try:
        if args.action == "start":
            cluster.start()
            print(f"PostgreSQL on 127.0.0.1:{cluster.port} (data {cluster.data_dir}); databases: "
                  f"{', '.join(DATABASES)}; URLs: python -m ifd.servers.postgres url DB", file=sys.stderr)
        elif args.action == "stop":
            cluster.stop()
        elif args.action == "status":
            print("running" if cluster.is_running() else "stopped")
        else:
            print(cluster.url(args.database, args.driver))
    except IfdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
