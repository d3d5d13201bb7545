"""benchmarks/results_md.py: docs/RESULTS.md from result JSON files, with the paper's figures beside ours."""

import json
import subprocess
import sys

from conftest import REPO


def generate(results) -> str:
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "results_md.py"), "--results", str(results),
                          "--out", "-"], capture_output=True, text=True, check=True)
    return out.stdout


def test_sections_come_from_the_files_and_missing_ones_name_their_command(tmp_path):
    row = {"map": 0.2187, "p@10": 0.44, "p@60": 0.3546, "ndcg@60": 0.3777, "n_queries": 6835}
    rows = [{"config": "content effnet-lite0 (raw 1280-d)", **row},
            {"config": "style gram-block4 pca256", **row, "map": 0.2270, "p@60": 0.3779}]
    (tmp_path / "retrieval_wikiart_styles.json").write_text(json.dumps(
        {"dataset": "wikiart_styles", "label": "style", "rows": rows, "best": rows[1], "best_style": "gram-block4"}))
    text = generate(tmp_path)
    assert "## Pretrained retrieval" in text
    assert "| content effnet-lite0 (raw 1280-d) | 0.2187 | 0.4400 | 0.3546 | 0.3777 | mAP 0.220, P@60 0.361, nDCG@60 0.385 |" in text
    assert "mAP 0.239, P@60 0.403" in text  # the paper's Gram figure beside our Gram row
    assert "0.012 mAP short" in text  # the gap the remark talks about, computed
    assert "## Query latency" not in text
    assert "- latency: `python benchmarks/query_latency.py`" in text
    assert "- reports: `artlens eval report" in text


def test_empty_results_folder_lists_every_section(tmp_path):
    text = generate(tmp_path)
    assert text.startswith("# Measured results")
    assert text.count("\n- ") >= 10


def test_privacy_section_from_the_benchmark_rows(tmp_path):
    rows = [{"setting": "central, no DP", "map": 0.435, "top1": 0.642, "auc_threshold": 0.61, "auc_lira": 0.66,
             "tpr@1%fpr": 0.05, "tpr@0.1%fpr": 0.01, "epsilon": None},
            {"setting": "central, record-level DP eps 8", "map": 0.42, "top1": 0.63, "auc_threshold": 0.51,
             "auc_lira": 0.52, "tpr@1%fpr": 0.011, "tpr@0.1%fpr": 0.001, "epsilon": 7.98}]
    (tmp_path / "privacy_central.json").write_text(json.dumps({"shadows": 4, "rows": rows}))
    text = generate(tmp_path)
    assert "## Privacy (`benchmarks/privacy.py`)" in text
    assert "| central, record-level DP eps 8 | 0.4200 | 0.6300 | 0.5100 | 0.5200 | 0.0110 | 0.0010 | 7.9800 |" in text
    assert "record-level DP (`--dp-records EPS`)" in text
    assert "- privacy: `python benchmarks/privacy.py`" not in text
