"""Video-level AUC beside frame-level AUC (METHOD.md §4), for every path that fills a result matrix.

A video is the group of test frames that share a video id; `TaskData.video_ids` builds it from the
task (the dataset), the label and the manifest's `source_id` (DeepfakeBench: `dataset/label/video`;
video ingest: the video's path), never from a folder name alone. Its score is the mean of its frames'
scores (`ifd.eval.scoring.video_scores`; whichever score the frame AUC uses: p(fake) or the raw
margin). Where no two test frames share an id (one image per source and label, as in the synthetic
stream) the video level equals the frame level and is reported as None.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ifd.eval.matrix import MatrixRow, ResultMatrix

Scores = tuple[np.ndarray, np.ndarray, Sequence[str]]
"""(y, frame scores, video_ids) of one task's split, in the same row order."""


def shares_videos(video_ids: Sequence[str]) -> bool:
    """True when at least two frames carry the same video id."""
    return len(set(video_ids)) < len(video_ids)


def video_auc(y: np.ndarray, p: np.ndarray, video_ids: Sequence[str]) -> float | None:
    """AUC of the per-video mean scores; None when no frames share a video (frame level is the answer)."""
    from ifd.eval.scoring import video_scores

    if len(video_ids) != len(y):
        raise ValueError(f"{len(video_ids)} video ids for {len(y)} frames")
    if not shares_videos(video_ids):
        return None
    return float(video_scores(np.asarray(y), np.asarray(p), list(video_ids))[0])


def matrix_row(scores: Sequence[Scores]) -> MatrixRow:
    """One matrix row from the scores of each seen task: frame AUC / ACC and video AUC."""
    from ifd.eval.scoring import frame_scores

    aucs, accs, videos = [], [], []
    for y, p, ids in scores:
        auc, acc = frame_scores(y, p)
        aucs.append(float(auc))
        accs.append(float(acc))
        videos.append(video_auc(y, p, ids))
    return MatrixRow(aucs, accs, videos)


def mean_video_rows(matrices: Sequence[dict[str, Any]]) -> list[list[float | None]]:
    """Element-wise mean over seeds of the `auc_video` rows of `ResultMatrix.to_dict()`s; an entry is
    None where any seed has none (a matrix written before video-level AUC existed counts as none)."""
    rows = [ResultMatrix.from_dict(m).video_rows() for m in matrices]
    out: list[list[float | None]] = []
    for t in range(len(rows[0])):
        out.append([_mean([r[t][i] for r in rows]) for i in range(t + 1)])
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    if any(v is None for v in values):
        return None
    return float(np.mean(np.asarray(values, dtype=float)))


def video_summary(matrix: ResultMatrix) -> dict[str, Any]:
    """`final_auc_video` per task (None where frames share no video), `AA_video` (the mean of the final
    row over the `video_tasks` tasks that have a video level; None when none has)."""
    final = matrix.video_rows()[-1] if matrix.n_tasks else []
    known = [v for v in final if v is not None]
    return {
        "final_auc_video": dict(zip(matrix.task_names, final, strict=True)),
        "AA_video": float(np.mean(known)) if known else None,
        "video_tasks": len(known),
    }
