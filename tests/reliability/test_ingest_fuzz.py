"""Property-based fuzzing of what users hand to `ifd ingest`: manifest CSVs and DeepfakeBench JSONs.

Every input either ingests or is refused with a named error (an `IfdError`, which the CLI prints as one
line with its exit code), never a traceback; and a refused input leaves the workspace as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from batchgen import image_bytes
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from ingest_faults import fingerprint

from ifd.data.ingest import ingest_batch
from ifd.data.ingest_config import IngestConfig
from ifd.errors import IfdError
from ifd.workspace import Workspace
from ifd.workspace_init import init_workspace

CFG = IngestConfig(min_size=8, frames_per_video=3)
FUZZ = settings(
    max_examples=int(os.environ.get("IFD_FUZZ_EXAMPLES", "30")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _mostly(common: st.SearchStrategy[object], odd: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """`common` four times in five (one_of would not weight repeated branches)."""
    return st.integers(0, 4).flatmap(lambda k: odd if k == 4 else common)


IMAGES = [f"img/{k}.png" for k in range(6)]
WEIRD_TEXT = st.sampled_from(["", " ", "real", "fake", "train", "test", "val", "x\x00y", "a" * 300, "../up",
                              "/etc/hostname", "C:\\win", "ü/ñ", "\t", '"quoted,"', "NaN"])
PATHS = st.one_of(st.sampled_from([*IMAGES, "img", "missing.png", "img/../img/0.png", "./img/1.png",
                                   "img//2.png", "img/" + "b" * 300 + ".png", "img/0.png\x00", "manifest.csv"]),
                  WEIRD_TEXT, st.text(max_size=20))
CELLS = st.one_of(WEIRD_TEXT, st.text(max_size=12))


@pytest.fixture(scope="module")
def fuzz_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return init_workspace(Workspace.at(tmp_path_factory.mktemp("fuzz") / "ws"))


def _source(root: Path) -> Path:
    folder = Path(tempfile.mkdtemp(dir=root))
    for k, rel in enumerate(IMAGES):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(image_bytes(f"{folder.name}-{k}", 12))
    return folder


def _ingest_or_named_error(src: Path, ws: Workspace, fmt: str) -> None:
    before = fingerprint(ws)
    try:
        ingest_batch(src, "fuzz", ws, CFG, fmt=fmt, replace=True)
        event("ingested")
    except IfdError as exc:
        event(f"{type(exc).__name__}: {str(exc).replace(str(src), 'SRC').replace(str(ws.root), 'WS').splitlines()[0][:70]}")
        assert str(exc).strip(), "an error must say what is wrong"
        assert fingerprint(ws) == before
    assert not ws.staging_dir.exists() or list(ws.staging_dir.iterdir()) == []


@st.composite
def manifest_texts(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:  # sometimes no CSV structure at all
        return draw(st.text(max_size=200))
    columns = draw(st.lists(st.sampled_from(["path", "label", "method", "split", "source_id", "note", ""]),
                            min_size=0, max_size=7))
    if draw(st.integers(0, 4)):
        columns = ["path", "label", "method", "split", "source_id", *columns]
    rows = draw(st.lists(st.fixed_dictionaries({
        "path": _mostly(st.sampled_from(IMAGES), PATHS),
        "label": _mostly(st.sampled_from(["real", "fake"]), CELLS),
        "method": _mostly(st.just("gan"), CELLS),
        "split": _mostly(st.sampled_from(["train", "test", "val"]), CELLS),
        "source_id": _mostly(st.sampled_from(["s1", "s2", "s3", "s4"]), CELLS),
    }), max_size=10))
    lines = [",".join(columns)]
    for row in rows:
        cells = [row.get(c, draw(CELLS)) for c in columns]
        lines.append(",".join(draw(st.sampled_from([c, json.dumps(c)])) for c in cells))
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n", "\n,,,\n"]))


HEADER = "path,label,method,split,source_id\n"
LONG = "img/" + "b" * 300 + ".png"


@FUZZ
@example(text=HEADER + "img/0.png\x00,real,gan,train,s1\n", encoding="utf-8")  # once a ValueError traceback
@example(text=HEADER + f"{LONG},real,gan,train,s1\n", encoding="utf-8")  # once an OSError (name too long)
@given(text=manifest_texts(), encoding=_mostly(st.just("utf-8"), st.sampled_from(["utf-16", "latin-1"])))
def test_manifest_csv_ingests_or_is_refused_by_name(
    fuzz_ws: Workspace, tmp_path_factory: pytest.TempPathFactory, text: str, encoding: str
) -> None:
    src = _source(tmp_path_factory.getbasetemp())
    try:
        (src / "manifest.csv").write_bytes(text.encode(encoding, errors="replace"))
        _ingest_or_named_error(src, fuzz_ws, "manifest")
    finally:
        shutil.rmtree(src)


JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8))
JSON_ANY = st.recursive(JSON_LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=12)
FRAMES = st.lists(_mostly(st.sampled_from(IMAGES + [p.replace("/", "\\") for p in IMAGES]), st.one_of(PATHS, JSON_LEAF)),
                  max_size=6)


@st.composite
def dfb_documents(draw: st.DrawFn) -> object:
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_ANY)
    entry = st.fixed_dictionaries({"label": _mostly(st.sampled_from(["FF-real", "FF-DF"]), JSON_LEAF),
                                   "frames": FRAMES})
    videos = st.dictionaries(_mostly(st.sampled_from(["000", "001", "002"]), CELLS), _mostly(entry, JSON_ANY),
                             min_size=1, max_size=3)
    by_split = st.dictionaries(
        _mostly(st.sampled_from(["train", "test", "val"]), CELLS),
        _mostly(videos, st.fixed_dictionaries({draw(st.sampled_from(["c23", "c40", "raw"])): videos})),
        min_size=1, max_size=3,
    )
    by_label = st.dictionaries(_mostly(st.sampled_from(["FF-real", "FF-DF"]), CELLS), by_split, max_size=3)
    return draw(st.dictionaries(_mostly(st.just("FF++"), CELLS), by_label, min_size=1, max_size=2))


def _one_video(frames: list[str]) -> dict[str, object]:
    return {"FF++": {"FF-real": {"train": {"000": {"label": "FF-real", "frames": frames}}}}}


@FUZZ
@example(document=_one_video(["img/0.png\x00"]), raw=None)  # once a ValueError traceback
@example(document=_one_video([LONG]), raw=None)  # once an OSError (name too long)
@example(document=None, raw=b"[" * 100_000)  # once a RecursionError traceback
@given(document=dfb_documents(), raw=_mostly(st.none(), st.binary(max_size=40)))
def test_deepfakebench_json_ingests_or_is_refused_by_name(
    fuzz_ws: Workspace, tmp_path_factory: pytest.TempPathFactory, document: object, raw: bytes | None
) -> None:
    src = _source(tmp_path_factory.getbasetemp())
    try:
        target = src / "dataset.json"
        target.write_bytes(raw if raw is not None else json.dumps(document).encode())
        _ingest_or_named_error(target, fuzz_ws, "deepfakebench")
    finally:
        shutil.rmtree(src)
