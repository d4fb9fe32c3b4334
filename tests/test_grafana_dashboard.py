"""monitoring/grafana/ifd.json: a valid Grafana dashboard model whose panels query series a real `ifd serve`
exports, with PromQL that Prometheus parses (promtool), covering the score histogram, latency, drift and
per-task AUC."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from exported_metrics import exported_series, ifd_names, metrics_text

DASHBOARD = Path(__file__).resolve().parents[1] / "monitoring" / "grafana" / "ifd.json"
PANEL_TYPES = {"row", "stat", "timeseries", "heatmap", "bargauge", "state-timeline", "gauge", "table"}


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panels() -> list[dict[str, Any]]:
    return [p for p in _dashboard()["panels"] if p["type"] != "row"]


def _exprs() -> list[str]:
    return [t["expr"] for p in _panels() for t in p["targets"]]


def test_the_dashboard_model_is_valid() -> None:
    dash = _dashboard()
    assert dash["title"] and dash["uid"] and isinstance(dash["schemaVersion"], int) and dash["schemaVersion"] >= 36
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in dash["panels"]:
        assert p["type"] in PANEL_TYPES, p["type"]
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"panel {p['title']!r} overlaps another"
        cells |= mine
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for p in _panels():
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs)), p["title"]
        assert all(t["expr"].strip() for t in p["targets"]), p["title"]
        assert all('instance=~"$instance"' in t["expr"] for t in p["targets"]), p["title"]


def test_the_required_panels_are_there() -> None:
    by_metric: dict[str, list[str]] = {}
    for p in _panels():
        for t in p["targets"]:
            for name in ifd_names(t["expr"]):
                by_metric.setdefault(name, []).append(p["type"])
    assert "heatmap" in by_metric["ifd_p_fake_bucket"]  # the score histogram
    assert "ifd_request_seconds_bucket" in by_metric  # latency
    assert {"ifd_score_psi", "ifd_score_ks_pvalue", "ifd_embedding_mmd_pvalue"} <= set(by_metric)  # drift
    assert "bargauge" in by_metric["ifd_task_auc"] and "ifd_task_auc_registered" in by_metric  # per-task AUC
    assert "ifd_model_version" in by_metric and "ifd_requests_total" in by_metric  # champion, error rate


def test_every_panel_queries_series_ifd_serve_exports(workspace) -> None:
    exported = exported_series(metrics_text(workspace))
    variables = {v["name"]: v for v in _dashboard()["templating"]["list"]}
    used = set().union(*(ifd_names(e) for e in _exprs())) | ifd_names(variables["instance"]["definition"])
    assert used - exported == set(), f"series not exported by ifd serve: {used - exported}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian: apt-get install prometheus)")
def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query (as a recording rule), with Grafana's variables filled in."""
    rules = [{"record": f"ifd:panel_query:{i}", "expr": e.replace("$instance", ".*").replace("$__rate_interval", "1m")}
             for i, e in enumerate(_exprs())]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_the_provisioning_files_point_grafana_at_prometheus_and_the_dashboard() -> None:
    folder = DASHBOARD.parent / "provisioning"
    (source,) = yaml.safe_load((folder / "datasources.yml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://127.0.0.1:9090"  # prometheus.yml's default port
    (provider,) = yaml.safe_load((folder / "dashboards.yml").read_text())["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].endswith("monitoring/grafana")
