"""The weak, low-frequency synthetic families: their traces sit at low spatial frequencies and are small,
a high-pass residual statistic does not separate them, `ifd synth --families` picks them (alone or in the
widened stream), and the default six-family stream stays byte-identical."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from ifd.errors import UnknownNameError
from ifd.eval.scoring import auc_score
from ifd.synth.config import SynthConfig
from ifd.synth.families import DEFAULT_ORDER, FAMILY_SETS, LOW_FREQUENCY, create_family, expand_families
from ifd.synth.reals import draw_real
from ifd.synth.stream import STREAM_FILE, plan_tasks, write_stream

# sha256 over (relative path, bytes) of every file of SynthConfig(tasks=6, per_class=6, size=32, seed=0),
# written by the code before the low-frequency families existed: the default stream must not move.
DEFAULT_DIGEST = "7f3eb0a92ba1cdb5e8c3d62d5bf8d7c6b4a08609ecf35d340b39c1932b3407a2"
SMALL = SynthConfig(tasks=6, per_class=6, size=32, seed=0)
LOW_CUT = 0.125  # cycles per pixel (Nyquist 0.5): "low" = the lowest quarter of the band


def _digest(root: Path, names: list[str] | None = None) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if names is not None:
        files = [p for p in files if p.relative_to(root).parts[0] in names]
    for p in files:
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def reals() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([draw_real(64, rng)[0] for _ in range(48)]).astype(np.float32)


def low_frequency_share(diff: np.ndarray) -> float:
    """Share of the (Hann-windowed) power of (N, H, W, C) differences below LOW_CUT cycles per pixel."""
    h, w = diff.shape[1:3]
    window = np.outer(np.hanning(h), np.hanning(w))[None, :, :, None]
    power = np.abs(np.fft.fft2(diff * window, axes=(1, 2))) ** 2
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))
    return float(power[:, radius < LOW_CUT].sum() / power.sum())


def laplacian_energy(images: np.ndarray) -> np.ndarray:
    """Mean |Laplacian| of each quantised image: the simplest high-pass residual statistic."""
    q = np.round(np.clip(images, 0, 1) * 255).astype(np.float32)
    return np.array([np.abs(cv2.Laplacian(img.mean(axis=2), cv2.CV_32F)).mean() for img in q])


@pytest.mark.parametrize("name", LOW_FREQUENCY)
@pytest.mark.parametrize("variant", [0, 1, 2])
def test_the_trace_is_weak_and_low_frequency(name: str, variant: int, reals: np.ndarray) -> None:
    fakes = create_family(name, variant, np.random.default_rng(1))(reals, np.random.default_rng(2))
    diff = fakes - reals
    assert low_frequency_share(diff) > 0.9
    rms, contrast = float(np.sqrt(np.mean(diff**2))), float(reals.std(axis=(1, 2, 3)).mean())
    assert 1.0 / 255 < rms < 0.5 * contrast, f"{name}: rms difference {rms * 255:.1f} grey levels"
    y = np.r_[np.zeros(len(reals)), np.ones(len(fakes))]
    residual_auc = auc_score(y, np.r_[laplacian_energy(reals), laplacian_energy(fakes)])
    assert 0.35 < residual_auc < 0.65, f"{name}: a high-pass residual statistic separates it (AUC {residual_auc:.2f})"


def test_the_check_tells_high_frequency_prints_apart(reals: np.ndarray) -> None:
    """The same measure on the shipped print families: their traces are not low-frequency."""
    for name in ("checkerboard", "fingerprint", "diffusion"):
        fakes = create_family(name, 0, np.random.default_rng(1))(reals, np.random.default_rng(2))
        assert low_frequency_share(fakes - reals) < 0.5, name


def test_sets_expand_and_unknown_names_list_the_sets() -> None:
    assert FAMILY_SETS["widened"] == DEFAULT_ORDER + LOW_FREQUENCY and len(set(FAMILY_SETS["widened"])) == 9
    assert expand_families(["lowfreq", "warp"]) == [*LOW_FREQUENCY, "warp"]
    with pytest.raises(UnknownNameError, match="widened"):
        expand_families(["nope"])
    plans = plan_tasks(SynthConfig(tasks=10, families=["widened"]))
    assert [p.name for p in plans] == [*DEFAULT_ORDER, *LOW_FREQUENCY, "checkerboard2"]


def test_default_stream_is_byte_identical_and_the_widened_one_extends_it(tmp_path: Path) -> None:
    write_stream(tmp_path / "default", SMALL)
    assert _digest(tmp_path / "default") == DEFAULT_DIGEST
    write_stream(tmp_path / "widened", SMALL.model_copy(update={"tasks": 9, "families": ["widened"]}))
    six = list(DEFAULT_ORDER)
    assert _digest(tmp_path / "widened", six) == _digest(tmp_path / "default", six)
    meta = json.loads((tmp_path / "widened" / STREAM_FILE).read_text())
    assert meta["tasks"] == [*DEFAULT_ORDER, *LOW_FREQUENCY]
    assert [f["family"] for f in meta["families"][6:]] == list(LOW_FREQUENCY)


def test_ifd_synth_families_picks_the_set_one_task_each(tmp_path: Path) -> None:
    out = tmp_path / "lf"
    cmd = [sys.executable, "-m", "ifd.cli", "synth", str(out), "--families", "lowfreq", "--per-class", "4",
           "--size", "32", "--json", "--workspace", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [Path(p).name for p in json.loads(done.stdout)["batches"]] == list(LOW_FREQUENCY)
    bad = subprocess.run([*cmd[:4], str(tmp_path / "x"), "--families", "gain_field,nope", "--workspace", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown generator family 'nope'" in bad.stderr
