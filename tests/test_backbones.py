"""Backbones: every registered one and timm names give (B, num_features); local weights load or fail clearly."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from ifd.errors import IfdError, UnknownNameError
from ifd.models import BACKBONES, create_backbone


@pytest.mark.parametrize("name", BACKBONES.names())
def test_registered_backbones_pool_to_num_features(name: str) -> None:
    model = create_backbone(name).eval()
    out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, model.num_features)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["test_resnet", "test_efficientnet", "test_vit"])
def test_timm_names_work_and_report_their_output_width(name: str) -> None:
    model = create_backbone(name, img_size=64).eval()
    out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, model.num_features)


def test_ifd_cnn_small_is_compact() -> None:
    model = create_backbone("ifd_cnn_small")
    n = sum(p.numel() for p in model.parameters())
    assert 0.3e6 <= n <= 1.0e6
    assert 128 <= model.num_features <= 256


def test_unknown_backbone_lists_known_names() -> None:
    with pytest.raises(UnknownNameError, match="ifd_cnn_small"):
        create_backbone("no_such_backbone_xyz")


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    x = torch.randn(2, 3, 32, 32)
    return torch.allclose(a.eval()(x), b.eval()(x))


def test_torch_state_dict_round_trip(tmp_path: Path) -> None:
    src = create_backbone("ifd_cnn_tiny")
    torch.nn.init.normal_(src.stem[0].weight)
    path = tmp_path / "tiny.pt"
    torch.save({"state_dict": src.state_dict()}, path)
    loaded = create_backbone("ifd_cnn_tiny", weights=path)
    assert _same_outputs(src, loaded)
    assert not _same_outputs(src, create_backbone("ifd_cnn_tiny"))


def test_safetensors_round_trip(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    src = create_backbone("ifd_cnn_tiny")
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    assert _same_outputs(src, create_backbone("ifd_cnn_tiny", weights=path))


def test_timm_checkpoint_with_classifier_loads(tmp_path: Path) -> None:
    import timm

    src = timm.create_model("test_resnet", pretrained=False, num_classes=5)
    path = tmp_path / "resnet.pth"
    torch.save(src.state_dict(), path)
    model = create_backbone("test_resnet", weights=path)
    ref = {k: v for k, v in src.state_dict().items() if not k.startswith("fc.")}
    got = model.model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in ref.items())


def test_mismatched_weights_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "small.pt"
    torch.save(create_backbone("ifd_cnn_small").state_dict(), path)
    with pytest.raises(IfdError, match="do not fit 'ifd_cnn_tiny'"):
        create_backbone("ifd_cnn_tiny", weights=path)


def test_missing_or_unsafe_weights_file(tmp_path: Path) -> None:
    with pytest.raises(IfdError, match="no such file"):
        create_backbone("ifd_cnn_tiny", weights=tmp_path / "absent.pt")
    unsafe = tmp_path / "unsafe.pt"
    unsafe.write_bytes(pickle.dumps({"stem.0.weight": object()}, protocol=2))
    with pytest.raises(IfdError, match="weights_only"):
        create_backbone("ifd_cnn_tiny", weights=unsafe)


@pytest.mark.parametrize("name", ["ifd_cnn_small", "ifd_cnn_tiny"])
def test_default_cnns_have_no_train_eval_gap(name: str) -> None:
    """GroupNorm: a frozen teacher in eval mode sees what the student in train mode sees at a task's start."""
    import copy

    student = create_backbone(name).train()
    teacher = copy.deepcopy(student).eval()
    x = torch.randn(4, 3, 32, 32)
    assert torch.allclose(student(x), teacher(x), atol=1e-5)


def test_efficientnet_pytorch_layout_loads_through_backbone_weights() -> None:
    """A timm EfficientNet name plus a file in the efficientnet_pytorch layout: renamed on load, as the named backbone."""
    from ifd.models.efficientnet_weights import lite0_wheel_file

    by_file = create_backbone("tf_efficientnet_lite0", weights=lite0_wheel_file(), img_size=32).eval()
    named = create_backbone("efficientnet_lite0.imagenet", img_size=32).eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(by_file(x), named(x))
