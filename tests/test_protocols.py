"""Protocol stream definitions over DeepfakeBench JSONs: a tiny DeepfakeBench tree built into a stream and learned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from batchgen import write_image

from ifd.data.protocol import build_protocol, default_dirs, known_protocols, load_protocol
from ifd.data.tasks import tasks_from_stream
from ifd.errors import BatchRefused, IfdError

# dataset -> (real label string, fake label strings); the names of protocol1.yaml
P1 = {
    "SDv21": ("SDv21_Real", ["SDv21_Fake"]),
    "FaceForensics++": ("FF-real", ["FF-DF", "FF-F2F", "FF-FS", "FF-NT"]),
    "DFDCP": ("DFDCP_Real", ["DFDCP_FakeA"]),
    "Celeb-DF-v2": ("CelebDFv2_real", ["CelebDFv2_fake"]),
}
FILES = {"SDv21": "SDv21.json", "FaceForensics++": "FaceForensics++.json", "DFDCP": "DFDCP.json", "Celeb-DF-v2": "Celeb-DF-v2.json"}
FRAMES = 6


def _videos(dataset: str, label_string: str, rgb: Path, split: str, n: int) -> dict[str, dict]:
    """n videos of FRAMES frames each (Windows separators, frames listed out of order)."""
    out = {}
    for v in range(n):
        name = f"{split}_{v:03d}"
        rels = [f"{dataset}\\{label_string}\\{name}\\{k}.png" for k in range(FRAMES)]
        for rel in rels:
            write_image(rgb / rel.replace("\\", "/"), f"{dataset}/{rel}", 40)
        out[name] = {"label": label_string, "frames": list(reversed(rels))}
    return out


def make_dfb_tree(root: Path, datasets: dict[str, tuple[str, list[str]]] = P1) -> Path:
    """A DeepfakeBench checkout in miniature: preprocessing/dataset_json/*.json and datasets/rgb frames."""
    json_dir, rgb = root / "preprocessing" / "dataset_json", root / "datasets" / "rgb"
    json_dir.mkdir(parents=True)
    for dataset, (real, fakes) in datasets.items():
        tree: dict = {}
        for ls in [real, *fakes]:
            splits = {"train": _videos(dataset, ls, rgb, "train", 3), "test": _videos(dataset, ls, rgb, "test", 2)}
            # DFDCP and Celeb-DF: val is a copy of test (dropped); the others have their own val videos
            splits["val"] = dict(splits["test"]) if dataset in ("DFDCP", "Celeb-DF-v2") else _videos(dataset, ls, rgb, "val", 1)
            tree[ls] = {k: {"c23": v} for k, v in splits.items()} if dataset == "FaceForensics++" else splits
        if dataset == "FaceForensics++":  # a label string the protocol leaves out
            tree["FF-FH"] = {"train": {"c23": _videos(dataset, "FF-FH", rgb, "train", 1)}}
        (json_dir / FILES[dataset]).write_text(json.dumps({dataset: tree}))
    return root


@pytest.fixture(scope="module")
def dfb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dfb_tree(tmp_path_factory.mktemp("dfb"))


@pytest.fixture(scope="module")
def stream(dfb_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("p1") / "stream"
    json_dir, frames = default_dirs(dfb_root)
    build_protocol(load_protocol("protocol1"), out, json_dir, frames, frames_per_video=3, progress=lambda _: None)
    return out


def test_shipped_protocols_are_the_papers() -> None:
    assert {"protocol1", "protocol2"} <= set(known_protocols())
    assert [t.name for t in load_protocol("protocol1").tasks] == ["SDv21", "FFpp", "DFDCP", "CDF"]
    p2 = load_protocol("protocol2")
    assert [t.name for t in p2.tasks] == ["FFpp", "MCNet", "BlendFace", "StyleGAN3"]
    assert p2.label_dict["mcnet_Fake"] == "fake" and p2.label_dict["StyleGAN3_Fake"] == "fake"


def test_protocol1_stream_has_its_tasks_in_order(stream: Path) -> None:
    tasks = tasks_from_stream(stream)
    assert [t.name for t in tasks] == ["SDv21", "FFpp", "DFDCP", "CDF"]
    record = json.loads((stream / "protocol.json").read_text())
    ff = tasks[1].frame
    assert set(ff["method"]) == {"FF-real", "FF-DF", "FF-F2F", "FF-FS", "FF-NT"}  # FF-FH left out, as the protocol says
    assert (ff.groupby("source_id").size() == 3).all()  # 3 of 6 frames per video
    assert record["tasks"]["DFDCP"]["val_equals_test"] is True
    assert not tasks[2].has_split("val") and tasks[0].has_split("val")
    for task in tasks:
        assert set(task.frame["label"]) == {"real", "fake"}
        assert task.frame["source_id"].str.startswith(task.frame["source_id"].iloc[0].split("/")[0]).all()


def test_protocol1_runs_end_to_end_with_the_tiny_backbone(stream: Path, tmp_path: Path) -> None:
    from ifd.continual.config import load_lid_config
    from ifd.train.loop import train_sequence

    cfg = load_lid_config("paper-b4", {"backbone": "ifd_cnn_tiny", "img_size": 16, "epochs": 1, "batch_size": 8,
                                       "budget_per_task": 8, "num_workers": 0, "image_cache_mb": 16})
    assert cfg.augment and list(cfg.augmentations) == ["hflip", "gaussian_blur", "color_jitter", "jpeg"]
    state = train_sequence(tasks_from_stream(stream), cfg, tmp_path / "run", progress=lambda _: None)
    assert state.task_names == ["SDv21", "FFpp", "DFDCP", "CDF"]
    auc = state.matrix.to_dict()["auc"]
    assert [len(row) for row in auc] == [1, 2, 3, 4]
    assert len(state.model.heads) == 4


def test_missing_json_or_dataset_names_what_exists(dfb_root: Path, tmp_path: Path) -> None:
    json_dir, frames = default_dirs(dfb_root)
    p = load_protocol("protocol2")
    with pytest.raises(IfdError, match="mcnet.json does not exist"):
        build_protocol(p, tmp_path / "s", json_dir, frames, progress=lambda _: None)
    assert not (tmp_path / "s" / "FFpp").exists()  # all or nothing
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntasks:\n  - {name: a, json: DFDCP.json, datasets: [DFDC]}\n")
    with pytest.raises(IfdError, match="no dataset DFDC; it holds DFDCP"):
        build_protocol(load_protocol(str(bad)), tmp_path / "t", json_dir, frames, progress=lambda _: None)


def test_a_task_repeating_an_earlier_tasks_frames_is_refused(dfb_root: Path, tmp_path: Path) -> None:
    twice = tmp_path / "twice.yaml"
    twice.write_text("name: twice\ntasks:\n  - {name: a, json: DFDCP.json}\n  - {name: b, json: DFDCP.json}\n")
    json_dir, frames = default_dirs(dfb_root)
    with pytest.raises(BatchRefused, match="task 'b' refused"):
        build_protocol(load_protocol(str(twice)), tmp_path / "s", json_dir, frames, progress=lambda _: None)


@pytest.mark.slow
def test_bench_paper_b4_on_the_protocol_stream_with_cpu_overrides(stream: Path, tmp_path: Path) -> None:
    """The done check of issue 11: `ifd bench --strategies lid:paper-b4` with --backbone/--img-size on the CPU."""
    out = tmp_path / "bench"
    env = {**os.environ, "IFD_WEIGHTS_DIR": str(tmp_path / "no-weights")}
    cmd = [sys.executable, "-m", "ifd.cli", "bench", str(stream), "--workspace", str(tmp_path), "--strategies", "lid:paper-b4",
           "--backbone", "ifd_cnn_tiny", "--img-size", "16", "--epochs", "1", "--budget", "8", "--seeds", "1", "--out", str(out), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((out / "results.json").read_text())
    assert result["strategies"]["lid:paper-b4"]["matrix_auc"][-1].__len__() == 4
    spec = json.loads(next((out / "runs").glob("*/spec.json")).read_text())
    assert spec["lid"]["backbone"] == "ifd_cnn_tiny" and spec["lid"]["fixed"] == ["backbone", "budget_per_task", "epochs", "img_size"]


def test_protocol_command_lists_and_builds(dfb_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ifd.cli import main

    assert main(["protocol", "list", "--json", "--workspace", str(tmp_path)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["json"] for t in listed["protocol1"]["tasks"]] == list(FILES.values())
    out = tmp_path / "stream"
    argv = ["protocol", "build", "protocol1", "--dfb-root", str(dfb_root), "--out", str(out), "--frames-per-video", "2",
            "--workspace", str(tmp_path), "--json"]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out)
    assert list(record["tasks"]) == ["SDv21", "FFpp", "DFDCP", "CDF"] and record["frames_per_video"] == 2
    assert json.loads((out / "stream.json").read_text())["tasks"] == ["SDv21", "FFpp", "DFDCP", "CDF"]
    assert main(argv) != 0  # a non-empty --out is refused without --replace
    assert "not empty" in capsys.readouterr().err
