"""The registered model: an MLflow pyfunc around `ifd.inference.scorer.DetectorScorer`.

The model holds one artifact, the detector's whole incremental state (`state.pt`: weights of every
head, the replay store, the attribution index), and the scorer on top of it, so
`mlflow.pyfunc.load_model("models:/ifd-detector@champion")` scores images in a fresh process.

Input: a DataFrame (or dict) with an `image` column; each value is raw bytes, a base64 string
(optionally a `data:image/...;base64,` URL), an (H, W, 3) array, or (only when the caller passes
`params={"allow_paths": True}`) a file path. Without that opt-in a string is never opened as a file: a
model served behind an API must not read the server's files because a request named them. Output:
one row per image with p_fake, label, generator (the attributed generator of a fake), unknown and
unknown_score. The threshold on p_fake is a predict parameter (default 0.5).

Code: the model is logged "from code" (`pyfunc_entry.py`, no pickle) and needs the `ifd` package
importable where it loads (this project's venv); its pip requirements are recorded for the record
and so that MLflow skips inferring them (seconds per version).
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

INPUT_COLUMN = "image"
OUTPUT_COLUMNS = ("p_fake", "label", "generator", "unknown", "unknown_score")
STATE_ARTIFACT = "state"
_REQUIREMENTS = ("torch", "torchvision", "numpy", "pandas", "pillow", "scikit-learn", "timm", "pydantic", "pyyaml", "mlflow")
_MAX_PATH = 4096


class IfdDetectorModel(mlflow.pyfunc.PythonModel):
    """Loads the incremental state artifact and scores images with the full detector scorer."""

    def load_context(self, context: Any) -> None:
        from ifd.inference.scorer import DetectorScorer
        from ifd.train.state import IncrementalState

        state = IncrementalState.load(Path(context.artifacts[STATE_ARTIFACT]))
        self.scorer = DetectorScorer(state)

    # MLflow 3 reads predict's type hints; a DataFrame hint keeps its schema enforcement (our explicit
    # `signature()`) turning every accepted input into a DataFrame, with no type-hint validation on top.
    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        params = params or {}
        items = input_items(model_input, allow_paths=bool(params.get("allow_paths", False)))
        self.scorer.threshold = float((params or {}).get("threshold", 0.5))
        rows = self.scorer.score(items).rows()
        frame = pd.DataFrame({c: pd.Series([r[c] for r in rows], dtype=object) for c in OUTPUT_COLUMNS})
        return frame.astype({"p_fake": "float64", "unknown": "bool", "unknown_score": "float64"})


def input_items(model_input: Any, allow_paths: bool = False) -> list[Any]:
    """The `image` values as what the scorer decodes: bytes or arrays (base64 strings decoded), and file
    paths only when `allow_paths`."""
    from ifd.inference.decode import BadImage

    if isinstance(model_input, pd.DataFrame):
        if INPUT_COLUMN not in model_input.columns:
            raise BadImage(f"the input needs an {INPUT_COLUMN!r} column; got {list(model_input.columns)}")
        values = list(model_input[INPUT_COLUMN])
    elif isinstance(model_input, dict):
        values = list(model_input.get(INPUT_COLUMN, []))
    else:
        values = list(model_input)
    return [_item(v, i, allow_paths) for i, v in enumerate(values)]


def _item(value: Any, i: int, allow_paths: bool) -> Any:
    from ifd.inference.decode import BadImage

    if isinstance(value, os.PathLike):
        if not allow_paths:
            raise BadImage(f"image {i}: a file path; reading files needs params={{'allow_paths': True}}")
        return value
    if not isinstance(value, str):
        return value
    text = value.strip()
    if allow_paths and len(text) < _MAX_PATH and not text.startswith("data:"):
        try:
            if Path(text).is_file():
                return text
        except OSError:
            pass
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        if not allow_paths:
            raise BadImage(f"image {i}: not base64 image data (a file path is read only with params={{'allow_paths': True}})") from None
        raise BadImage(f"image {i}: neither an existing file path nor base64 image data") from None


def signature() -> Any:
    """Input: one `image` column of any type; output: the score columns; params: threshold, allow_paths."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

    outputs = Schema(
        [
            ColSpec("double", "p_fake"),
            ColSpec("string", "label"),
            ColSpec("string", "generator", required=False),
            ColSpec("boolean", "unknown"),
            ColSpec("double", "unknown_score"),
        ]
    )
    params = ParamSchema([ParamSpec("threshold", "double", 0.5), ParamSpec("allow_paths", "boolean", False)])
    return ModelSignature(inputs=Schema([ColSpec(AnyType(), INPUT_COLUMN)]), outputs=outputs, params=params)


def input_example(img_size: int) -> pd.DataFrame:
    """One seeded noise image as base64 PNG (what a JSON client sends)."""
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (img_size, img_size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return pd.DataFrame({INPUT_COLUMN: [base64.b64encode(buf.getvalue()).decode("ascii")]})


def pip_requirements() -> list[str]:
    """The installed versions of what the scorer imports (recorded; `ifd` itself must be importable)."""
    reqs = []
    for name in _REQUIREMENTS:
        try:
            reqs.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            reqs.append(name)
    return reqs


def entry_script() -> str:
    """The models-from-code script MLflow copies into every logged model."""
    return str(Path(__file__).with_name("pyfunc_entry.py"))
