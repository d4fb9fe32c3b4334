"""Validation of a staged batch with great-expectations; the only module that imports it.

Facts about each row (path safety, file size, header size, decoding, content hash) are computed with
pandas and PIL first (ifd.data.facts); a GX ExpectationSuite then asserts them, one expectation per named check, so
the report reads as a list of rules that held or failed, with the offending rows. A batch whose
manifest lacks required columns is reported on that alone: no other rule can be read without them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ifd.data.facts import compute_facts
from ifd.data.ingest_config import IngestConfig
from ifd.data.manifest import COLUMNS, LABELS, SPLITS, read_manifest

ID_COLUMNS = ["path", "label", "split", "source_id"]


@dataclass
class CheckResult:
    """One rule: `n_failed` offending rows (1 for a table-level rule) and a few of them."""

    name: str
    success: bool
    n_failed: int = 0
    sample_rows: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""


@dataclass
class ValidationReport:
    batch: str
    n_rows: int
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return all(c.success for c in self.checks)

    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.success]

    def to_text(self) -> str:
        """One line per failed check: its name, what it asks, how many rows fail, sample rows."""
        if self.success:
            return f"{self.batch}: all {len(self.checks)} checks passed ({self.n_rows} rows)"
        lines = []
        for c in self.failures():
            rows = "; ".join(json.dumps(r, sort_keys=False, default=str) for r in c.sample_rows)
            lines.append(
                f"  {c.name}: {c.description}: {c.n_failed} failing" + (f", e.g. {rows}" if rows else "")
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "n_rows": self.n_rows,
            "success": self.success,
            "checks": [asdict(c) for c in self.checks],
        }


@dataclass(frozen=True)
class Check:
    """A named rule: the GX expectation that asserts it (built from the module `gxe`) and the columns
    that explain a failing row."""

    name: str
    description: str
    expectation: Callable[[Any], Any]
    detail: tuple[str, ...] = ()


COLUMNS_CHECK = Check(
    "columns",
    f"manifest.csv needs the columns {', '.join(COLUMNS)}",
    lambda x: x.ExpectTableColumnsToMatchSet(column_set=list(COLUMNS), exact_match=False),
)


def row_checks(cfg: IngestConfig) -> list[Check]:
    """The rules on a batch's rows, in report order."""
    return [
        Check(
            "not_empty",
            "the batch has at least one row",
            lambda x: x.ExpectTableRowCountToBeBetween(min_value=1),
        ),
        Check(
            "label_values",
            f"label must be one of {', '.join(LABELS)}",
            lambda x: x.ExpectColumnValuesToBeInSet(column="label", value_set=list(LABELS)),
        ),
        Check(
            "split_values",
            f"split must be one of {', '.join(SPLITS)}",
            lambda x: x.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
        ),
        Check(
            "required_values",
            "method and source_id must not be empty",
            lambda x: x.ExpectColumnValuesToBeNull(column="empty_fields"),
            ("method", "empty_fields"),
        ),
        Check(
            "path_inside_batch",
            "path must be a relative POSIX path without '..' naming a file in the batch",
            lambda x: x.ExpectColumnValuesToBeNull(column="path_problem"),
            ("path_problem",),
        ),
        Check(
            "image_decodes",
            "the file must decode as an image",
            lambda x: x.ExpectColumnValuesToBeNull(column="decode_error"),
            ("decode_error",),
        ),
        Check(
            "min_size",
            f"the shorter image side must be at least {cfg.min_size} px",
            lambda x: x.ExpectColumnValuesToBeBetween(column="min_side", min_value=cfg.min_size),
            ("width", "height"),
        ),
        Check(
            "max_size",
            f"the longer image side must be at most {cfg.max_size} px",
            lambda x: x.ExpectColumnValuesToBeBetween(column="max_side", max_value=cfg.max_size),
            ("width", "height"),
        ),
        Check(
            "max_file_bytes",
            f"an image file may hold at most {cfg.max_file_bytes} bytes (a larger one is not read)",
            lambda x: x.ExpectColumnValuesToBeBetween(column="n_bytes", max_value=cfg.max_file_bytes),
            ("n_bytes",),
        ),
        Check(
            "unique_content",
            "no two rows may hold the same image content (sha256)",
            lambda x: x.ExpectColumnValuesToBeUnique(column="sha256"),
            ("sha256",),
        ),
        Check(
            "source_in_one_split",
            "rows that share a source_id must share a split",
            lambda x: x.ExpectColumnValuesToBeBetween(column="source_n_splits", max_value=1),
            ("source_splits",),
        ),
        Check(
            "not_already_ingested",
            "image content must not be in an earlier batch",
            lambda x: x.ExpectColumnValuesToBeNull(column="ingested_in"),
            ("sha256", "ingested_in"),
        ),
    ]


def class_check(split: str) -> Check:
    """Both classes present in `split`, asserted on a per-label count frame of that split."""
    return Check(
        f"classes_in_{split}",
        f"{split} must hold both real and fake rows",
        lambda x: x.ExpectColumnValuesToBeBetween(column="rows", min_value=1),
        ("split", "label", "rows"),
    )


def check_batch(
    batch_dir: Path, known_hashes: dict[str, str], cfg: IngestConfig
) -> tuple[pd.DataFrame, ValidationReport]:
    """Validate the batch in `batch_dir`; `known_hashes` maps sha256 -> batch that already holds it.

    Returns the manifest rows with a `sha256` column, and the report (`report.success` says whether
    the batch may be committed).
    """
    batch_dir = Path(batch_dir)
    manifest = read_manifest(batch_dir)
    report = ValidationReport(batch=batch_dir.name, n_rows=len(manifest))
    n_samples = cfg.sample_rows_in_report
    with _gx_batches() as validate:
        report.checks += validate(manifest, [COLUMNS_CHECK], n_samples)
        if not report.success:
            return manifest.assign(sha256=None), report
        rows = _rows_with_facts(batch_dir, manifest, known_hashes, cfg)
        report.checks += validate(rows, row_checks(cfg), n_samples)
        for split in ("train", "test"):
            report.checks += validate(_class_counts(rows, split), [class_check(split)], n_samples)
    return rows.loc[:, [*COLUMNS, "sha256"]], report


def _rows_with_facts(
    batch_dir: Path, manifest: pd.DataFrame, known_hashes: dict[str, str], cfg: IngestConfig
) -> pd.DataFrame:
    """The manifest's columns plus the per-row facts and the helper columns the expectations assert."""
    rows = manifest.loc[:, list(COLUMNS)].reset_index(drop=True)
    facts = compute_facts(batch_dir, rows["path"], max_side=cfg.max_size, max_bytes=cfg.max_file_bytes)
    facts = facts.drop(columns="path")
    rows = pd.concat([rows, facts], axis=1)
    rows["min_side"] = rows[["width", "height"]].min(axis=1, skipna=False)
    rows["max_side"] = rows[["width", "height"]].max(axis=1, skipna=False)
    empty = [rows[c].str.strip().eq("").map({True: c, False: ""}) for c in ("method", "source_id")]
    rows["empty_fields"] = [",".join(p for p in parts if p) or None for parts in zip(*empty, strict=True)]
    splits_of = rows.groupby("source_id")["split"].agg(lambda s: ",".join(sorted(set(s))))
    rows["source_splits"] = rows["source_id"].map(splits_of)
    rows["source_n_splits"] = (
        rows["source_id"].map(rows.groupby("source_id")["split"].nunique()).astype("int64")
    )
    rows["ingested_in"] = rows["sha256"].map(lambda h: known_hashes.get(h) if isinstance(h, str) else None)
    return rows


def _class_counts(rows: pd.DataFrame, split: str) -> pd.DataFrame:
    in_split = rows[rows["split"] == split]
    return pd.DataFrame(
        {
            "split": split,
            "label": list(LABELS),
            "rows": [int((in_split["label"] == label).sum()) for label in LABELS],
        }
    )


Validate = Callable[[pd.DataFrame, list[Check], int], list[CheckResult]]


@contextmanager
def _gx_batches() -> Iterator[Validate]:
    """An ephemeral GX context (no progress bars, no analytics) with one pandas dataframe asset."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    definition = (
        context.data_sources.add_pandas("ifd-batch")
        .add_dataframe_asset("rows")
        .add_batch_definition_whole_dataframe("whole")
    )

    def validate(frame: pd.DataFrame, checks: list[Check], n_samples: int) -> list[CheckResult]:
        suite = gx.ExpectationSuite(name="ifd-batch")
        for check in checks:
            expectation = check.expectation(gxe)
            expectation.meta = {"check": check.name}
            suite.add_expectation(expectation)
        batch = definition.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
        by_name = {r.expectation_config.meta["check"]: r for r in result.results}
        return [_check_result(c, by_name[c.name], frame, n_samples) for c in checks]

    yield validate


def _check_result(check: Check, result: Any, frame: pd.DataFrame, n_samples: int) -> CheckResult:
    info = result.exception_info or {}
    if info.get("raised_exception") is True or _nested_exception(info):
        # Every column an expectation reads is made above, so this is a bug, not a bad batch.
        raise RuntimeError(f"great-expectations could not evaluate check {check.name!r}: {info}")
    out = CheckResult(check.name, bool(result.success), description=check.description)
    if out.success:
        return out
    details = result.result or {}
    if "unexpected_index_list" in details:
        index = list(details["unexpected_index_list"])
        out.n_failed = int(details.get("unexpected_count", len(index)))
        columns = [c for c in [*ID_COLUMNS, *check.detail] if c in frame.columns]
        sample = frame.loc[index[:n_samples], list(dict.fromkeys(columns))]
        out.sample_rows = json.loads(sample.to_json(orient="records"))
    else:
        out.n_failed = 1
        mismatched = details.get("details", {}).get("mismatched", {})
        observed = (
            {"missing": mismatched["missing"]}
            if "missing" in mismatched
            else {"observed": details.get("observed_value")}
        )
        out.sample_rows = [json.loads(json.dumps(observed, default=str))]
    return out


def _nested_exception(info: dict[str, Any]) -> bool:
    """GX nests per-metric exception records when a metric fails to compute."""
    return any(isinstance(v, dict) and v.get("raised_exception") for v in info.values())
