"""The synthetic forgery stream: batch format, determinism, unique content, split hygiene, families."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pydantic import ValidationError

from ifd.data.manifest import COLUMNS, read_manifest
from ifd.errors import IfdError, UnknownNameError
from ifd.synth.config import SynthConfig
from ifd.synth.families import DEFAULT_ORDER, FAMILIES, create_family
from ifd.synth.reals import draw_real, photo_pool
from ifd.synth.stream import STREAM_FILE, write_stream

TINY = SynthConfig(size=32, per_class=12, seed=3)


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "stream"
    write_stream(out, TINY)
    return out


def _all_rows(stream: Path) -> pd.DataFrame:
    names = json.loads((stream / STREAM_FILE).read_text())["tasks"]
    return pd.concat([read_manifest(stream / n).assign(task=n) for n in names], ignore_index=True)


def _file_digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_manifest_schema_and_values(stream: Path) -> None:
    meta = json.loads((stream / STREAM_FILE).read_text())
    assert meta["tasks"] == list(DEFAULT_ORDER[: TINY.tasks])
    assert SynthConfig.model_validate(meta["config"]) == TINY
    for name in meta["tasks"]:
        df = read_manifest(stream / name)
        assert tuple(df.columns) == COLUMNS
        assert df["label"].value_counts().to_dict() == {"real": TINY.per_class, "fake": TINY.per_class}
        assert set(df["split"]) == {"train", "val", "test"}
        assert (df.loc[df["label"] == "fake", "method"] == name).all()
        assert (df.loc[df["label"] == "real", "method"].str.len() > 0).all()
        pairs = df.groupby("source_id")["label"].agg(lambda labels: "+".join(sorted(labels)))
        assert (pairs == "fake+real").all()
        for rel in df["path"]:
            assert rel.startswith("images/") and rel.endswith(".png") and "\\" not in rel and ".." not in rel
            with Image.open(stream / name / rel) as img:
                assert img.size == (TINY.size, TINY.size) and img.mode == "RGB"


def test_split_fractions_follow_config(stream: Path) -> None:
    rows = _all_rows(stream)
    per_task = rows[rows["label"] == "real"].groupby("task")["split"].value_counts().unstack()
    n = TINY.per_class
    assert (per_task["test"] == round(n * TINY.test_fraction)).all()
    assert (per_task["val"] == max(1, round(n * TINY.val_fraction))).all()


def test_source_id_never_in_two_splits_nor_two_tasks(stream: Path) -> None:
    rows = _all_rows(stream)
    assert (rows.groupby("source_id")["split"].nunique() == 1).all()
    assert (rows.groupby("source_id")["task"].nunique() == 1).all()


def test_content_is_unique_within_and_across_tasks(stream: Path) -> None:
    digests = [d for k, d in _file_digests(stream).items() if k.endswith(".png")]
    assert len(digests) == TINY.tasks * 2 * TINY.per_class
    assert len(set(digests)) == len(digests)
    pixels = {hashlib.sha256(np.asarray(Image.open(p)).tobytes()).hexdigest() for p in stream.rglob("*.png")}
    assert len(pixels) == len(digests)


def test_same_seed_same_bytes_other_seed_other_images(stream: Path, tmp_path: Path) -> None:
    again, other = tmp_path / "again", tmp_path / "other"
    write_stream(again, TINY)
    assert _file_digests(again) == _file_digests(stream)
    write_stream(other, TINY.model_copy(update={"seed": TINY.seed + 1}))
    first, second = _file_digests(stream), _file_digests(other)
    images = [k for k in first if k.endswith(".png")]
    assert sum(first[k] == second.get(k) for k in images) == 0


def test_more_tasks_than_families_cycle_with_new_names_and_parameters(tmp_path: Path) -> None:
    cfg = SynthConfig(size=32, per_class=3, tasks=len(DEFAULT_ORDER) + 2, families=None)
    folders = write_stream(tmp_path / "s", cfg)
    names = [f.name for f in folders]
    assert len(set(names)) == len(names)
    assert names[len(DEFAULT_ORDER)] == f"{DEFAULT_ORDER[0]}2"
    described = {d["name"]: d for d in json.loads((tmp_path / "s" / STREAM_FILE).read_text())["families"]}
    first, repeat = described[DEFAULT_ORDER[0]], described[f"{DEFAULT_ORDER[0]}2"]
    assert first["family"] == repeat["family"] and first["variant"] == 0 and repeat["variant"] == 1
    assert {k: v for k, v in first.items() if k not in ("name", "variant")} != {
        k: v for k, v in repeat.items() if k not in ("name", "variant")
    }


def test_explicit_family_list_is_followed(tmp_path: Path) -> None:
    folders = write_stream(tmp_path / "s", SynthConfig(size=32, per_class=3, tasks=3, families=["warp", "blend"]))
    assert [f.name for f in folders] == ["warp", "blend", "warp2"]


@pytest.fixture(scope="module")
def reals() -> np.ndarray:
    rng = np.random.default_rng(0)
    batch = np.stack([draw_real(32, rng)[0] for _ in range(6)])
    return np.round(batch * 255) / 255


@pytest.mark.parametrize("variant", [0, 1, 2])
@pytest.mark.parametrize("name", FAMILIES.names())
def test_every_family_changes_each_image_and_keeps_shape_and_range(name: str, variant: int, reals: np.ndarray) -> None:
    family = create_family(name, variant, np.random.default_rng(1))
    fakes = family(reals.astype(np.float32), np.random.default_rng(2))
    assert fakes.shape == reals.shape and fakes.dtype == np.float32
    assert fakes.min() >= 0.0 and fakes.max() <= 1.0
    changed = (np.round(fakes * 255) != np.round(reals * 255)).reshape(len(reals), -1).any(axis=1)
    assert changed.all()
    json.dumps(family.describe())


def test_family_is_deterministic_for_its_generators(reals: np.ndarray) -> None:
    for name in FAMILIES.names():
        a = create_family(name, 0, np.random.default_rng(5))(reals.astype(np.float32), np.random.default_rng(6))
        b = create_family(name, 0, np.random.default_rng(5))(reals.astype(np.float32), np.random.default_rng(6))
        assert np.array_equal(a, b), name


def test_unknown_family_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError) as err:
        create_family("stylegan9", 0, np.random.default_rng(0))
    for known in DEFAULT_ORDER:
        assert known in str(err.value)
    with pytest.raises(IfdError, match="checkerboard"):
        write_stream(tmp_path / "s", SynthConfig(size=32, per_class=3, families=["stylegan9"]))
    assert not (tmp_path / "s").exists()


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValidationError, match="multiple of 8"):
        SynthConfig(size=36)
    with pytest.raises(ValidationError, match="sum to 1"):
        SynthConfig(train_fraction=0.8, val_fraction=0.1, test_fraction=0.2)
    with pytest.raises(ValidationError):
        SynthConfig(unknown_key=1)


def test_refuses_a_non_empty_folder_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "s"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    cfg = SynthConfig(size=32, per_class=3, tasks=1)
    with pytest.raises(IfdError, match="not empty"):
        write_stream(out, cfg)
    assert (out / "keep.txt").exists()
    write_stream(out, cfg, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / STREAM_FILE).exists()


def test_reals_come_from_bundled_photos_and_procedural_images() -> None:
    names = {name for name, _ in photo_pool()}
    assert {"china", "flower"} <= names and len(names) >= 4
    rng = np.random.default_rng(0)
    drawn = [draw_real(32, rng) for _ in range(60)]
    sources = {s for _, s in drawn}
    assert sources & names and sources & {"dead_leaves", "pink_noise"}
    for img, _ in drawn:
        assert img.shape == (32, 32, 3) and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
