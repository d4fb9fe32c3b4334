"""The local store of scored images that the monitor reads: one SQLite file per workspace
(`.ifd/monitoring/predictions.db`), written by the scoring API, safe for one writer and many readers.

Per scored image: time, request id, the role of the model that scored it (`champion` answered, `shadow`
is the challenger scoring the same input), its version, p(fake), label, attributed generator, the unknown
score and flag, and the pooled embedding as float16 (what the MMD drift test compares). Labelled feedback
(`label` real/fake for a prediction id) goes to a second table.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ifd.errors import IfdError

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts REAL NOT NULL,
  request_id TEXT NOT NULL,
  item INTEGER NOT NULL,
  role TEXT NOT NULL,
  version TEXT NOT NULL,
  p_fake REAL NOT NULL,
  label TEXT NOT NULL,
  generator TEXT,
  unknown INTEGER NOT NULL,
  unknown_score REAL NOT NULL,
  embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS predictions_role_id ON predictions (role, id);
CREATE TABLE IF NOT EXISTS feedback (
  request_id TEXT NOT NULL,
  item INTEGER NOT NULL,
  label TEXT NOT NULL CHECK (label IN ('real', 'fake')),
  ts REAL NOT NULL,
  PRIMARY KEY (request_id, item)
);
"""


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
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            yield con
            con.commit()
        finally:
            con.close()

    def record(
        self,
        request_id: str,
        role: str,
        version: str,
        rows: Sequence[dict],
        embeddings: np.ndarray,
    ) -> None:
        """Store one request's scores (rows as `Scores.rows()`), in input order."""
        if len(rows) != len(embeddings):
            raise IfdError(f"{len(rows)} score rows but {len(embeddings)} embeddings")
        now = time.time()
        values = [
            (now, request_id, i, role, version, r["p_fake"], r["label"], r.get("generator"), int(bool(r["unknown"])),
             r.get("unknown_score", 0.0), np.asarray(e, dtype=np.float16).tobytes())
            for i, (r, e) in enumerate(zip(rows, embeddings, strict=True))
        ]
        with self._connect() as con:
            con.executemany(
                "INSERT INTO predictions (ts, request_id, item, role, version, p_fake, label, generator, unknown, "
                "unknown_score, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )

    def add_feedback(self, request_id: str, item: int, label: str) -> None:
        if label not in ("real", "fake"):
            raise IfdError(f"feedback label must be real or fake, got {label!r}")
        with self._connect() as con:
            known = con.execute(
                "SELECT 1 FROM predictions WHERE request_id = ? AND item = ? LIMIT 1", (request_id, item)
            ).fetchone()
            if known is None:
                raise IfdError(f"no prediction {request_id}/{item} to give feedback on")
            con.execute("INSERT OR REPLACE INTO feedback VALUES (?, ?, ?, ?)", (request_id, item, label, time.time()))

    def window(self, role: str = "champion", limit: int = 2000, version: str | None = None) -> Window:
        """The last `limit` predictions of `role` (optionally of one version), oldest first."""
        sql = (
            "SELECT request_id, item, version, p_fake, label, generator, unknown, embedding, unknown_score "
            "FROM predictions WHERE role = ?"
        )
        args: list = [role]
        if version is not None:
            sql += " AND version = ?"
            args.append(version)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._connect() as con:
            rows = con.execute(sql, args).fetchall()[::-1]
        emb = [np.frombuffer(r[7], dtype=np.float16).astype(np.float32) for r in rows]
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
        sql = (
            "SELECT c.p_fake, s.p_fake, f.label FROM predictions c JOIN predictions s "
            "ON c.request_id = s.request_id AND c.item = s.item AND s.role = 'shadow' "
            "LEFT JOIN feedback f ON f.request_id = c.request_id AND f.item = c.item "
            "WHERE c.role = 'champion' ORDER BY c.id DESC LIMIT ?"
        )
        with self._connect() as con:
            return [(float(a), float(b), c) for a, b, c in con.execute(sql, (limit,)).fetchall()[::-1]]

    def count(self, role: str | None = None) -> int:
        with self._connect() as con:
            if role is None:
                return int(con.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])
            return int(con.execute("SELECT COUNT(*) FROM predictions WHERE role = ?", (role,)).fetchone()[0])
