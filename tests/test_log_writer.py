"""The scoring API's prediction-log writer: every queued request stored, a batch's requests in one
transaction, nothing lost on close, a failed write reported without stopping the writer."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from ifd.monitoring.prediction_log import PredictionLog
from ifd.serving.log_writer import LogWriter


def _rows(n: int) -> tuple[list[dict], np.ndarray]:
    rows = [{"p_fake": 0.5 + i / 100, "label": "fake", "generator": "g", "unknown": False, "unknown_score": 0.1}
            for i in range(n)]
    return rows, np.ones((n, 8), dtype=np.float32)


def test_concurrent_requests_are_all_stored_in_fewer_transactions(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.db")
    calls: list[int] = []

    def record_many(entries: list) -> None:
        calls.append(len(entries))
        log.record_many(entries)

    writer = LogWriter(record_many)
    release = threading.Event()
    writer.put("block", "champion", "1", *_rows(1))  # the first write; the rest queue up behind it meanwhile

    def client(k: int) -> None:
        release.wait()
        for j in range(25):
            writer.put(f"r{k}-{j}", "champion", "1", *_rows(2))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    release.set()
    for t in threads:
        t.join()
    assert writer.flush()
    assert log.count("champion") == 2 * 100 + 1
    assert sum(calls) == 101 and len(calls) < 101  # coalesced: some transactions held several requests
    window = log.window("champion", limit=1000)
    assert window.p_fake.size == 201
    writer.close()


def test_close_writes_what_is_still_queued(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.db")
    slow = threading.Event()

    def record_many(entries: list) -> None:
        slow.wait(0.2)
        log.record_many(entries)

    writer = LogWriter(record_many)
    for j in range(30):
        writer.put(f"r{j}", "shadow", "2", *_rows(1))
    writer.close()
    assert log.count("shadow") == 30


def test_a_failed_write_is_logged_and_the_writer_goes_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = PredictionLog(tmp_path / "p.db")
    lost: list[int] = []
    writer = LogWriter(log.record_many, on_error=lost.append)
    rows, emb = _rows(2)
    with caplog.at_level(logging.ERROR, logger="ifd.serving"):
        writer.put("bad", "champion", "1", rows, emb[:1])  # two rows, one embedding: record_many refuses it
        assert writer.flush()
    assert lost == [1] and "not stored" in caplog.text
    writer.put("good", "champion", "1", rows, emb)
    writer.close()
    assert log.count("champion") == 2


def test_a_bad_request_does_not_cost_the_others_of_its_transaction(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.db")
    lost: list[int] = []
    rows, emb = _rows(2)
    writer = LogWriter(log.record_many, on_error=lost.append)
    writer._write([("a", "champion", "1", rows, emb), ("bad", "champion", "1", rows, emb[:1]),
                   ("b", "champion", "1", rows, emb)])
    writer.close()
    assert lost == [1] and log.count("champion") == 4
