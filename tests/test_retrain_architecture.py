"""An incremental retrain keeps the champion's architecture: a champion on the old default backbone and a
config on the new default stop with an error that names both, before anything is trained."""

from __future__ import annotations

import pytest

from ifd.continual.config import LIDConfig
from ifd.errors import IfdError
from ifd.lifecycle.retrain import _check_architecture


def test_the_new_default_backbone_against_an_old_champion_is_named() -> None:
    old = LIDConfig(backbone="ifd_cnn_small").model_dump()
    with pytest.raises(IfdError, match=r"backbone 'ifd_cnn_small' -> 'ifd_cnn_small_lf'.*version 3"):
        _check_architecture(old, LIDConfig().model_dump(), "3")


def test_same_architecture_with_other_training_settings_passes() -> None:
    old = LIDConfig(backbone="ifd_cnn_small", lr=1e-3).model_dump()
    _check_architecture(old, LIDConfig(backbone="ifd_cnn_small", lr=5e-4, epochs=2).model_dump(), "3")
    with pytest.raises(IfdError, match="img_size 64 -> 96"):
        _check_architecture(old, LIDConfig(backbone="ifd_cnn_small", img_size=96).model_dump(), "3")
