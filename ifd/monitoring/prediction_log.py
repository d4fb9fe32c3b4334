"""The store of scored images that the monitor reads: one SQL database behind one SQLAlchemy URL.

The embedded default is a SQLite file per workspace (`.ifd/monitoring/predictions.db`, WAL mode, one
writer at a time and many readers). Set a server URL (`postgresql://…`, see ifd/monitoring/log_location.py)
and several `ifd serve` replicas write one log that `ifd monitor` reads: PostgreSQL takes concurrent
writers, each request is one transaction, ids only grow.

Per scored image: time, request id, the role of the model that scored it (`champion` answered, `shadow`
is the challenger scoring the same input), its version, p(fake), label, attributed generator, the unknown
score and flag, and the pooled embedding as float16 (what the MMD drift test compares). Labelled feedback
(`label` real/fake for a prediction id) goes to a second table.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ifd.errors import IfdError

_LOCK_KEY = 0x1FD10C  # pg_advisory_xact_lock key: one process creates the tables at a time


def _metadata() -> Any:
    import sqlalchemy as sa

    md = sa.MetaData()
    sa.Table(
        "predictions", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("request_id", sa.Text, nullable=False),
        sa.Column("item", sa.Integer, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("p_fake", sa.Float, nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("generator", sa.Text),
        sa.Column("unknown", sa.Integer, nullable=False),
        sa.Column("unknown_score", sa.Float, nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        sa.Index("predictions_role_id", "role", "id"),
        sqlite_autoincrement=True,
    )
    sa.Table(
        "feedback", md,
        sa.Column("request_id", sa.Text, primary_key=True),
        sa.Column("item", sa.Integer, primary_key=True),
        sa.Column("label", sa.Text, sa.CheckConstraint("label IN ('real', 'fake')"), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
    )
    return md


def normalise_url(target: Path | str) -> str:
    """A path becomes `sqlite:///path`; `postgresql://` gets the installed driver (psycopg 3)."""
    text = str(target)
    if "://" not in text:
        path = Path(text)
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    if text.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    return text


@dataclass
class Window:
    """The most recent predictions of one role, oldest first."""

    request_ids: list[str]
    items: np.ndarray
    versions: list[str]
    p_fake: np.ndarray
    labels: list[str]
    generators: list[str | None]
    unknown: np.ndarray
    unknown_scores: np.ndarray
    embeddings: np.ndarray

    def __len__(self) -> int:
        return len(self.p_fake)


class PredictionLog:
    """`PredictionLog(path)` is the SQLite file; `PredictionLog("postgresql://…")` a shared server."""

    def __init__(self, target: Path | str) -> None:
        self.url = normalise_url(target)
        self.path: Path | None = Path(target) if "://" not in str(target) else None
        self._engine: Any = None
        self._pid = -1
        self._md = _metadata()
        self._tables = self._md.tables
        self._create_tables()

    @property
    def display_url(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    def _db(self) -> Any:
        """The engine of this process (a forked replica makes its own: connections do not cross a fork)."""
        if self._engine is None or self._pid != os.getpid():
            import sqlalchemy as sa

            if self.url.startswith("sqlite"):
                # A connection per transaction, as sqlite3 had: nothing stays open on a file that may be replaced.
                engine = sa.create_engine(self.url, connect_args={"timeout": 30}, poolclass=sa.pool.NullPool)
                sa.event.listen(engine, "connect", _sqlite_pragmas)
            else:
                engine = sa.create_engine(self.url, pool_pre_ping=True, pool_size=2, max_overflow=4)
            self._engine, self._pid = engine, os.getpid()
        return self._engine

    @contextmanager
    def _begin(self) -> Iterator[Any]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        import sqlalchemy.exc

        try:
            con = self._db().connect()
        except sqlalchemy.exc.OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise IfdError(f"prediction log {self.display_url} unreachable: {reason}") from exc
        with con, con.begin():
            yield con

    def _create_tables(self) -> None:
        import sqlalchemy as sa

        with self._begin() as con:
            if con.dialect.name == "postgresql":
                con.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            self._md.create_all(con, checkfirst=True)

    def record(
        self,
        request_id: str,
        role: str,
        version: str,
        rows: Sequence[dict],
        embeddings: np.ndarray,
    ) -> None:
        """Store one request's scores (rows as `Scores.rows()`), in input order, in one transaction."""
        self.record_many([(request_id, role, version, rows, embeddings)])

    def record_many(self, requests: Sequence[tuple[str, str, str, Sequence[dict], np.ndarray]]) -> None:
        """Store several requests' scores, each `(request_id, role, version, rows, embeddings)`, in one
        transaction (the scoring API's log writer coalesces the requests of a batch this way)."""
        now = time.time()
        values = []
        for request_id, role, version, rows, embeddings in requests:
            if len(rows) != len(embeddings):
                raise IfdError(f"{len(rows)} score rows but {len(embeddings)} embeddings")
            values.extend(
                {"ts": now, "request_id": request_id, "item": i, "role": role, "version": version,
                 "p_fake": float(r["p_fake"]), "label": r["label"], "generator": r.get("generator"),
                 "unknown": int(bool(r["unknown"])), "unknown_score": float(r.get("unknown_score", 0.0)),
                 "embedding": np.asarray(e, dtype=np.float16).tobytes()}
                for i, (r, e) in enumerate(zip(rows, embeddings, strict=True))
            )
        if not values:
            return
        with self._begin() as con:
            con.execute(self._tables["predictions"].insert(), values)

    def add_feedback(self, request_id: str, item: int, label: str) -> None:
        import sqlalchemy as sa

        if label not in ("real", "fake"):
            raise IfdError(f"feedback label must be real or fake, got {label!r}")
        with self._begin() as con:
            known = con.execute(
                sa.text("SELECT 1 FROM predictions WHERE request_id = :r AND item = :i LIMIT 1"),
                {"r": request_id, "i": item},
            ).first()
            if known is None:
                raise IfdError(f"no prediction {request_id}/{item} to give feedback on")
            con.execute(_upsert(con.dialect.name, self._tables["feedback"]),
                        {"request_id": request_id, "item": item, "label": label, "ts": time.time()})

    def window(self, role: str = "champion", limit: int = 2000, version: str | None = None) -> Window:
        """The last `limit` predictions of `role` (optionally of one version), oldest first."""
        import sqlalchemy as sa

        sql = (
            "SELECT request_id, item, version, p_fake, label, generator, unknown, embedding, unknown_score "
            "FROM predictions WHERE role = :role"
        )
        args: dict[str, Any] = {"role": role, "limit": limit}
        if version is not None:
            sql += " AND version = :version"
            args["version"] = version
        sql += " ORDER BY id DESC LIMIT :limit"
        with self._begin() as con:
            rows = con.execute(sa.text(sql), args).all()[::-1]
        emb = [np.frombuffer(bytes(r[7]), dtype=np.float16).astype(np.float32) for r in rows]
        return Window(
            request_ids=[r[0] for r in rows],
            items=np.array([r[1] for r in rows], dtype=int),
            versions=[r[2] for r in rows],
            p_fake=np.array([r[3] for r in rows], dtype=np.float64),
            labels=[r[4] for r in rows],
            generators=[r[5] for r in rows],
            unknown=np.array([bool(r[6]) for r in rows], dtype=bool),
            unknown_scores=np.array([r[8] for r in rows], dtype=np.float64),
            embeddings=np.stack(emb) if emb else np.zeros((0, 0), dtype=np.float32),
        )

    def paired(self, limit: int = 2000) -> list[tuple[float, float, str | None]]:
        """(champion p_fake, shadow p_fake, feedback label or None) for inputs both scored, most recent last."""
        import sqlalchemy as sa

        sql = (
            "SELECT c.p_fake, s.p_fake, f.label FROM predictions c JOIN predictions s "
            "ON c.request_id = s.request_id AND c.item = s.item AND s.role = 'shadow' "
            "LEFT JOIN feedback f ON f.request_id = c.request_id AND f.item = c.item "
            "WHERE c.role = 'champion' ORDER BY c.id DESC LIMIT :limit"
        )
        with self._begin() as con:
            rows = con.execute(sa.text(sql), {"limit": limit}).all()[::-1]
        return [(float(a), float(b), c) for a, b, c in rows]

    def count(self, role: str | None = None) -> int:
        import sqlalchemy as sa

        with self._begin() as con:
            if role is None:
                return int(con.execute(sa.text("SELECT COUNT(*) FROM predictions")).scalar_one())
            return int(con.execute(sa.text("SELECT COUNT(*) FROM predictions WHERE role = :r"),
                                   {"r": role}).scalar_one())

    def close(self) -> None:
        if self._engine is not None and self._pid == os.getpid():
            self._engine.dispose()
        self._engine = None


def _sqlite_pragmas(dbapi_con: Any, _record: Any) -> None:
    cur = dbapi_con.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _upsert(dialect: str, table: Any) -> Any:
    """INSERT … ON CONFLICT (request_id, item) DO UPDATE: the last feedback on an image wins."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise IfdError(f"prediction log: unsupported database {dialect!r}; use sqlite or postgresql")
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=["request_id", "item"], set_={"label": stmt.excluded.label, "ts": stmt.excluded.ts}
    )
