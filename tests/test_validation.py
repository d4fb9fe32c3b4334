"""Validation rules: for each, a batch that breaks it is reported under its name, a near miss passes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from batchgen import image_bytes, make_batch, read_rows, write_image, write_rows

from ifd.data.facts import compute_facts
from ifd.data.ingest_config import IngestConfig
from ifd.data.validation import check_batch

CHECK_NAMES = [
    "columns",
    "not_empty",
    "label_values",
    "split_values",
    "required_values",
    "path_inside_batch",
    "image_decodes",
    "min_size",
    "max_size",
    "max_file_bytes",
    "unique_content",
    "source_in_one_split",
    "not_already_ingested",
    "classes_in_train",
    "classes_in_test",
]
Edit = Callable[[Path], dict]  # changes the batch in place; returns check_batch keyword overrides


def _set(row: int, column: str, value: str) -> Edit:
    def edit(batch: Path) -> dict:
        frame = read_rows(batch)
        frame.loc[row, column] = value
        write_rows(batch, frame)
        return {}

    return edit


def _drop_rows(label: str, split: str) -> Edit:
    def edit(batch: Path) -> dict:
        frame = read_rows(batch)
        write_rows(batch, frame[~((frame["label"] == label) & (frame["split"] == split))])
        return {}

    return edit


def _image(row: int, size: int | tuple[int, int] = 40, fmt: str = "PNG", truncate: bool = False) -> Edit:
    def edit(batch: Path) -> dict:
        path = batch / read_rows(batch).loc[row, "path"]
        data = image_bytes(f"new-{row}", size, fmt)
        path.write_bytes(data[: len(data) // 2] if truncate else data)
        return {}

    return edit


def _move(row: int, rel: str) -> Edit:
    def edit(batch: Path) -> dict:
        frame = read_rows(batch)
        target = batch / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(batch / frame.loc[row, "path"], target)
        frame.loc[row, "path"] = rel
        write_rows(batch, frame)
        return {}

    return edit


def _copy_content(src_row: int, dst_row: int) -> Edit:
    def edit(batch: Path) -> dict:
        frame = read_rows(batch)
        (batch / frame.loc[dst_row, "path"]).write_bytes((batch / frame.loc[src_row, "path"]).read_bytes())
        return {}

    return edit


def _known(row: int | None) -> Edit:
    def edit(batch: Path) -> dict:
        if row is None:
            return {"known": {"0" * 64: "older"}}
        sha = compute_facts(batch, [read_rows(batch).loc[row, "path"]])["sha256"][0]
        return {"known": {sha: "older"}}

    return edit


def _columns(drop: str | None = None, add: str | None = None) -> Edit:
    def edit(batch: Path) -> dict:
        frame = read_rows(batch)
        frame = frame.drop(columns=drop) if drop else frame.assign(**{add: "x"})
        frame.to_csv(batch / "manifest.csv", index=False)
        return {}

    return edit


def _empty(batch: Path) -> dict:
    write_rows(batch, [])
    return {}


def _outside_link(batch: Path) -> dict:
    secret = write_image(batch.parent / "elsewhere.png", "elsewhere")
    frame = read_rows(batch)
    (batch / frame.loc[0, "path"]).unlink()
    (batch / frame.loc[0, "path"]).symlink_to(secret)
    return {}


def _inside_link(batch: Path) -> dict:
    frame = read_rows(batch)
    (batch / "linked").symlink_to(batch / "images")
    frame.loc[0, "path"] = "linked/" + Path(frame.loc[0, "path"]).name
    write_rows(batch, frame)
    return {}


def _padded(row: int, extra: int) -> Edit:
    def edit(batch: Path) -> dict:
        path = batch / read_rows(batch).loc[row, "path"]
        path.write_bytes(path.read_bytes() + b"\0" * extra)
        return {}

    return edit


def _text_as_png(batch: Path) -> dict:
    (batch / read_rows(batch).loc[0, "path"]).write_text("hello")
    return {}


def _noop(batch: Path) -> dict:
    return {}


CASES: dict[str, tuple[str, Edit, Edit]] = {
    # id: (check that must fail, edit that breaks it, near miss that must pass)
    "columns": ("columns", _columns(drop="source_id"), _columns(add="note")),
    "empty": ("not_empty", _empty, _noop),
    "label": ("label_values", _set(0, "label", "Fake"), _noop),
    "split": ("split_values", _set(0, "split", "validation"), _noop),
    "method": ("required_values", _set(1, "method", ""), _set(1, "method", "gan v2")),
    "dotdot": ("path_inside_batch", _set(0, "path", "../b/images/real_000.png"), _move(0, "deep/er/x.png")),
    "absolute": ("path_inside_batch", _set(0, "path", "/etc/hostname"), _move(0, "./x.png")),
    "backslash": ("path_inside_batch", _move(0, "images\\x.png"), _noop),
    "missing": ("path_inside_batch", _set(0, "path", "images/nope.png"), _noop),
    "symlink_out": ("path_inside_batch", _outside_link, _noop),
    "symlink_in": ("path_inside_batch", _inside_link, _noop),
    "truncated": ("image_decodes", _image(0, truncate=True), _image(0, fmt="JPEG")),
    "not_image": ("image_decodes", _text_as_png, _image(0, fmt="BMP")),
    "small": ("min_size", _image(0, (40, 31)), _image(0, (40, 32))),
    "large": ("max_size", _image(0, (41, 40)), _image(0, (40, 40))),
    "bytes": ("max_file_bytes", _padded(0, 20_000), _padded(0, 1_000)),
    "dupe": ("unique_content", _copy_content(0, 2), _copy_content(0, 0)),
    "source": ("source_in_one_split", _set(0, "split", "test"), _set(0, "source_id", "another")),
    "known": ("not_already_ingested", _known(3), _known(None)),
    "train": ("classes_in_train", _drop_rows("fake", "train"), _drop_rows("fake", "val")),
    "test": ("classes_in_test", _drop_rows("real", "test"), _drop_rows("real", "val")),
}
CFG = IngestConfig(min_size=32, max_size=40, max_file_bytes=20_000, sample_rows_in_report=2)


@pytest.mark.parametrize("case", list(CASES))
def test_rule_refuses_a_breaking_batch_and_passes_a_near_miss(tmp_path: Path, case: str) -> None:
    check, breaking, near_miss = CASES[case]
    bad = make_batch(tmp_path / "b")
    known = breaking(bad).get("known", {})
    frame, report = check_batch(bad, known, CFG)
    failed = {c.name: c for c in report.failures()}
    assert check in failed, report.to_text()
    assert failed[check].n_failed >= 1 and failed[check].sample_rows
    assert f"  {check}: " in report.to_text()
    json.dumps(report.to_dict())

    good = make_batch(tmp_path / "g")
    known = near_miss(good).get("known", {})
    frame, report = check_batch(good, known, CFG)
    assert report.success, report.to_text()
    assert [c.name for c in report.checks] == CHECK_NAMES
    assert list(frame.columns) == ["path", "label", "method", "split", "source_id", "sha256"]
    assert frame["sha256"].str.len().eq(64).all()


def test_report_names_rows_and_earlier_batch(tmp_path: Path) -> None:
    batch = make_batch(tmp_path / "b")
    _set(0, "path", "../../x.png")(batch)
    known = _known(5)(batch)["known"]
    _, report = check_batch(batch, known, CFG)
    by_name = {c.name: c for c in report.failures()}
    assert set(by_name) == {"path_inside_batch", "not_already_ingested"}
    assert by_name["path_inside_batch"].sample_rows[0]["path_problem"] == "'..' in path"
    assert by_name["not_already_ingested"].sample_rows[0]["ingested_in"] == "older"
    assert len(report.to_text().splitlines()) == 2


def test_missing_columns_stop_the_other_checks(tmp_path: Path) -> None:
    batch = make_batch(tmp_path / "b")
    _columns(drop="split")(batch)
    _, report = check_batch(batch, {}, CFG)
    assert [c.name for c in report.checks] == ["columns"]
    assert report.checks[0].sample_rows == [{"missing": ["split"]}]


def test_truncated_images_fail_even_when_pil_is_told_to_load_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    batch = make_batch(tmp_path / "b")
    _image(0, truncate=True)(batch)
    facts = compute_facts(batch, read_rows(batch)["path"])
    assert facts["decode_error"].notna().tolist() == [True] + [False] * 7
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True


def test_header_over_max_size_is_refused_on_size_without_decoding(tmp_path: Path) -> None:
    """Dimensions come from the header: a file whose header is too large is never decoded, so its truncated
    body (which would fail to decode) is not reported; max_size reports the header's size."""
    batch = make_batch(tmp_path / "b")
    path = batch / read_rows(batch).loc[0, "path"]
    data = image_bytes("wide", (41, 40))
    path.write_bytes(data[: len(data) // 2])
    _, report = check_batch(batch, {}, CFG)
    failed = {c.name: c for c in report.failures()}
    assert set(failed) == {"max_size"}, report.to_text()
    assert failed["max_size"].sample_rows[0]["width"] == 41


def test_oversized_file_is_not_read(tmp_path: Path) -> None:
    batch = make_batch(tmp_path / "b")
    _padded(0, 50_000)(batch)
    facts = compute_facts(batch, read_rows(batch)["path"], max_bytes=20_000)
    assert facts.loc[0, "n_bytes"] > 50_000
    assert facts.loc[0, ["sha256", "width", "decode_error"]].isna().all()
    assert facts.loc[1:, "sha256"].notna().all()
