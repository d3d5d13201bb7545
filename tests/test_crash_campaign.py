"""A sample of benchmarks/crash_campaign.py: kill -9 at the commit and inside the renames of an
incremental ingest and of a training run that replaces the head and its index."""

import sys

import pytest
from conftest import REPO


@pytest.mark.slow
def test_kills_at_write_boundaries_leave_a_working_collection_that_a_rerun_completes(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import crash_campaign
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    result = crash_campaign.run(tmp_path, only=["incremental ingest", "training again (head replaced)"],
                                points=["catalog-batch#1", "committed#1", "retired#1", "apply#2"], say=lambda *a: None)
    failures = [(s["scenario"], t["boundary"], t["failure"]) for s in result["scenarios"] for t in s["trials"]
                if t["failure"]]
    assert result["kill_points"] >= 6 and failures == []
    states = {t["state"] for s in result["scenarios"] for t in s["trials"]}
    assert states == {"before", "after"}  # kills before the commit keep the old state, after it the new one
