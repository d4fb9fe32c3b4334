"""Batch adapters: each format lands in staging as a manifest batch; traps of each format are handled."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from batchgen import (
    make_batch,
    make_deepfakebench,
    make_folders,
    make_videos,
    read_rows,
    write_image,
    write_rows,
)
from PIL import Image

from ifd.data.adapters import ADAPTERS, convert_batch
from ifd.data.adapters.base import draw_splits, even_indices
from ifd.data.ingest_config import IngestConfig, SplitFractions
from ifd.errors import BatchRefused, IfdError, UnknownNameError


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    path = tmp_path / "staging"
    path.mkdir()
    return path


def test_registry_knows_every_format_and_names_them_on_a_miss(tmp_path: Path, staging: Path) -> None:
    assert ADAPTERS.names() == ["deepfakebench", "folders", "manifest", "video"]
    with pytest.raises(UnknownNameError, match="known: deepfakebench, folders, manifest, video"):
        convert_batch("parquet", tmp_path, staging, IngestConfig())


def test_even_indices_spread_over_the_whole_range() -> None:
    assert even_indices(20, 4) == [0, 6, 13, 19]
    assert even_indices(3, 8) == [0, 1, 2]
    assert even_indices(10, 1) == [5]
    assert even_indices(0, 4) == []


def test_draw_splits_is_seeded_and_keeps_both_classes_in_train_and_test() -> None:
    sources = {f"r{i}": "real" for i in range(10)} | {f"f{i}": "fake" for i in range(3)}
    first = draw_splits(sources, SplitFractions(), seed=1)
    assert first == draw_splits(sources, SplitFractions(), seed=1)
    for label in ("real", "fake"):
        mine = [first[s] for s, lab in sources.items() if lab == label]
        assert "train" in mine and "test" in mine
    assert sorted(first[s] for s in sources if s.startswith("r")).count("test") == 2
    assert draw_splits({"only": "real"}, SplitFractions(), 0) == {"only": "train"}


def test_manifest_copies_named_files_and_drops_extra_columns(tmp_path: Path, staging: Path) -> None:
    batch = make_batch(tmp_path / "b")
    frame = read_rows(batch)
    frame["note"] = "x"
    write_rows(batch, frame)
    report = convert_batch("manifest", batch, staging, IngestConfig())
    staged = read_rows(staging)
    assert list(staged.columns) == ["path", "label", "method", "split", "source_id"]
    assert report.n_rows == 8 and report.notes["dropped_columns"] == ["note"]
    assert all((staging / p).read_bytes() == (batch / p).read_bytes() for p in staged["path"])


def test_manifest_never_copies_from_outside_the_batch_but_keeps_the_row(
    tmp_path: Path, staging: Path
) -> None:
    batch = make_batch(tmp_path / "b")
    secret = write_image(tmp_path / "secret.png", "secret")
    frame = read_rows(batch)
    frame.loc[0, "path"] = "../secret.png"
    frame.loc[1, "path"] = str(secret)
    write_rows(batch, frame)
    report = convert_batch("manifest", batch, staging, IngestConfig())
    assert report.notes["paths_not_copied"] == 2
    assert read_rows(staging)["path"].tolist()[:2] == ["../secret.png", str(secret)]
    assert (tmp_path / "secret.png").read_bytes() not in [p.read_bytes() for p in staging.rglob("*.png")]


def test_manifest_missing_is_named(tmp_path: Path, staging: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(IfdError, match="manifest.csv"):
        convert_batch("manifest", tmp_path / "empty", staging, IngestConfig())


def test_folders_methods_sources_and_seeded_splits(tmp_path: Path, staging: Path) -> None:
    src = make_folders(tmp_path / "celebs")
    report = convert_batch("folders", src, staging, IngestConfig(seed=3))
    staged = read_rows(staging)
    assert report.notes["skipped_files"] == 1 and len(staged) == 11
    by_path = staged.set_index("path")
    assert by_path.loc["fake/gan/f1.png", "method"] == "gan"
    assert by_path.loc["fake/loose.jpg", "method"] == "celebs"
    assert by_path.loc["real/r0.png", "method"] == "real"
    assert by_path.loc["real/r0.png", "source_id"] == "real/r0"
    for label in ("real", "fake"):
        assert {"train", "test"} <= set(staged.loc[staged["label"] == label, "split"])
    again = tmp_path / "again"
    again.mkdir()
    convert_batch("folders", src, again, IngestConfig(seed=3))
    pd.testing.assert_frame_equal(staged, read_rows(again))


def test_folders_need_real_and_fake(tmp_path: Path, staging: Path) -> None:
    write_image(tmp_path / "src" / "real" / "a.png", "a")
    with pytest.raises(IfdError, match="fake/"):
        convert_batch("folders", tmp_path / "src", staging, IngestConfig())


def test_deepfakebench_samples_evenly_normalises_paths_and_names_sources(
    tmp_path: Path, staging: Path
) -> None:
    src = make_deepfakebench(tmp_path / "dfb", frames=20)
    report = convert_batch("deepfakebench", src, staging, IngestConfig(frames_per_video=4))
    staged = read_rows(staging)
    video = staged[staged["source_id"] == "FaceForensics++/FF-DF/000_003"]
    assert [Path(p).name for p in video["path"]] == [
        "000_0000.png",
        "001_0006.png",
        "002_0013.png",
        "003_0019.png",
    ]
    assert (
        set(video["label"]) == {"fake"}
        and set(video["method"]) == {"FF-DF"}
        and set(video["split"]) == {"train"}
    )
    assert set(staged.loc[staged["method"] == "FF-real", "label"]) == {"real"}
    assert len(staged) == 6 * 4 and report.notes["compression"] == ["c23"]
    assert all("\\" not in p and (staging / p).is_file() for p in staged["path"])
    json.dumps(report.notes)


def test_deepfakebench_label_dict_and_absolute_paths(tmp_path: Path, staging: Path) -> None:
    src = make_deepfakebench(tmp_path / "dfb", frames=3, compression=False)
    raw = json.loads(src.read_text())
    for by_split in raw["FaceForensics++"].values():
        for entries in by_split.values():
            for entry in entries.values():
                entry["frames"] = [str(src.parent / f.replace("\\", "/")) for f in entry["frames"]]
    src.write_text(json.dumps(raw))
    cfg = IngestConfig(label_dict={"FF-real": 0, "FF-DF": "fake"}, frames_per_video=2)
    convert_batch("deepfakebench", src, staging, cfg)
    staged = read_rows(staging)
    assert staged.groupby("method")["label"].unique().map(list).to_dict() == {
        "FF-DF": ["fake"],
        "FF-real": ["real"],
    }
    assert cfg.label_of("CelebDFv1_real") == "real" and cfg.label_of("DFDCP_FakeA") == "fake"


def test_deepfakebench_refuses_a_split_leak_naming_the_video(tmp_path: Path, staging: Path) -> None:
    videos = {
        "train": {"FF-real": ["000", "001"], "FF-DF": ["000_003"]},
        "test": {"FF-real": ["001"], "FF-DF": ["002_005"]},
    }
    src = make_deepfakebench(tmp_path / "dfb", frames=2, videos=videos)
    with pytest.raises(BatchRefused, match=r"split leak.*FaceForensics\+\+/FF-real/001 \(test, train\)"):
        convert_batch("deepfakebench", src, staging, IngestConfig())


def test_deepfakebench_val_copy_of_test_is_dropped_and_noted(tmp_path: Path, staging: Path) -> None:
    test = {"FF-real": ["002"], "FF-DF": ["002_005"]}
    videos = {"train": {"FF-real": ["000"], "FF-DF": ["000_003"]}, "val": test, "test": test}
    src = make_deepfakebench(tmp_path / "dfb", frames=2, videos=videos)
    report = convert_batch("deepfakebench", src, staging, IngestConfig())
    assert report.notes["val_equals_test"] is True
    assert set(read_rows(staging)["split"]) == {"train", "test"}


def test_deepfakebench_missing_frames_and_compression_are_named(tmp_path: Path, staging: Path) -> None:
    src = make_deepfakebench(tmp_path / "dfb", frames=2)
    (src.parent / "frames" / "FF-DF" / "000_003" / "0001.png").unlink()
    with pytest.raises(BatchRefused, match=r"1 frame file.*FF-DF/000_003/0001.png"):
        convert_batch("deepfakebench", src, staging, IngestConfig())
    with pytest.raises(IfdError, match=r"compression level\(s\) \['c23', 'c40'\], not 'raw'"):
        convert_batch("deepfakebench", src, staging, IngestConfig(compression="raw"))


def test_video_samples_frames_crops_faces_and_counts_misses(tmp_path: Path, staging: Path) -> None:
    src = make_videos(tmp_path / "vids", n_per_class=2, frames=12)
    report = convert_batch("video", src, staging, IngestConfig(frames_per_video=3, image_size=48))
    staged = read_rows(staging)
    assert report.notes["videos"] == 4 and len(staged) == 12
    assert report.notes["no_face_frames"] == 6  # the noise videos; every astronaut frame has its face found
    assert set(staged["source_id"]) == {"real/v0.avi", "real/v1.avi", "fake/v0.avi", "fake/v1.avi"}
    assert staged.groupby("source_id")["split"].nunique().max() == 1
    assert [Path(p).stem for p in staged.loc[staged["source_id"] == "real/v0.avi", "path"]] == [
        "000000",
        "000006",
        "000011",
    ]
    with Image.open(staging / staged["path"].iloc[0]) as image:
        assert image.size == (48, 48)


def test_video_refuses_unreadable_files(tmp_path: Path, staging: Path) -> None:
    src = make_videos(tmp_path / "vids", n_per_class=1, frames=4)
    (src / "fake" / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(BatchRefused, match="fake/broken.mp4"):
        convert_batch("video", src, staging, IngestConfig(frames_per_video=2, image_size=32))
