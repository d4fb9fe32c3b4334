"""The cross-family transfer matrix on a tiny stream: shape, range, and a missing stream named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ifd.errors import IfdError
from ifd.synth.config import SynthConfig
from ifd.synth.stream import write_stream
from ifd.synth.transfer import cross_family_matrix, matrix_markdown


def test_matrix_has_one_auc_per_train_test_pair(tmp_path: Path) -> None:
    write_stream(tmp_path / "s", SynthConfig(size=32, per_class=10, tasks=2, families=["checkerboard", "warp"]))
    names, auc = cross_family_matrix(tmp_path / "s", epochs=1, seed=0)
    assert names == ["checkerboard", "warp"]
    assert auc.shape == (2, 2) and np.all((auc >= 0) & (auc <= 1))
    again = cross_family_matrix(tmp_path / "s", epochs=1, seed=0)[1]
    assert np.array_equal(auc, again)
    table = matrix_markdown(names, auc)
    assert table.count("\n") == 3 and f"{auc[1, 0]:.3f}" in table


def test_missing_stream_is_named(tmp_path: Path) -> None:
    with pytest.raises(IfdError, match="stream.json"):
        cross_family_matrix(tmp_path, epochs=1)
