"""`ifd demo`: the whole loop on the embedded synthetic stream, in a workspace of its own.

synth -> init workspace -> ingest each batch through the ingest flow -> learn the batches
incrementally -> summary (AA, AF, per-task AUC, where the plots are).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ifd.config import IfdConfig
from ifd.workspace import Workspace


def run_demo(root: Path, cfg: IfdConfig, fresh: bool = True, progress: Callable[[str], None] = print) -> dict[str, Any]:
    from ifd.data.catalog import load_catalog
    from ifd.prefect_env import prefect_environment
    from ifd.synth.stream import write_stream
    from ifd.train.run import run_training
    from ifd.workspace_init import init_workspace

    start = time.perf_counter()
    ws = Workspace.at(root)
    if fresh and ws.root.exists():
        shutil.rmtree(ws.root)
    init_workspace(ws)
    stream = ws.root / "stream"
    if not (stream / "stream.json").exists():
        progress(f"[demo] writing the synthetic stream ({cfg.synth.tasks} generator families) to {stream}")
        write_stream(stream, cfg.synth)
    batches = _stream_batches(stream)
    ingested = set(load_catalog(ws.catalog_path).names())
    with prefect_environment():
        from flows.ingest import ingest_flow

        for batch in batches:
            if batch.name in ingested:
                continue
            progress(f"[demo] ingest {batch.name}")
            ingest_flow(src=str(batch), name=batch.name, root=str(ws.root), cfg=cfg.ingest.model_dump())
    progress("[demo] learning the batches incrementally (LID + SUR replay + LSDA)")
    summary = run_training(ws, cfg, stream=None, out=ws.artifacts_dir / "train", resume=not fresh, progress=progress)
    summary["workspace"] = str(ws.root)
    summary["wall_s"] = round(time.perf_counter() - start, 1)
    summary["text"] = summary["text"] + f"\nworkspace: {ws.root}\nwall time: {summary['wall_s']} s"
    return summary


def _stream_batches(stream: Path) -> list[Path]:
    import json

    order = json.loads((stream / "stream.json").read_text())["tasks"]
    return [stream / name for name in order]
