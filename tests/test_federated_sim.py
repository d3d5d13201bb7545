"""Flower's simulation engine end to end, through the CLI (slow: starts Ray)."""

import json

import pytest
from feature_collections import make_feature_collection

pytest.importorskip("flwr")
pytestmark = pytest.mark.slow


def test_simulate_two_rounds_three_institutions_through_the_cli(tmp_path, capsys):
    from artlens.cli import main
    from artlens.models import load_head

    coll = make_feature_collection(tmp_path / "c", ("baroque", "cubism", "impressionism"), per_class=25,
                                   extractors=("colour-hist",))
    coll.close()
    run_dir, out = tmp_path / "run", tmp_path / "federated.pt"
    code = main(["federate", "simulate", "--collection", str(tmp_path / "c"), "--partition", "style",
                 "--strategy", "fedstyle", "--rounds", "2", "--local-epochs", "2", "--features", "colour-hist",
                 "--run-dir", str(run_dir), "--out", str(out), "--cpus", "2", "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [1, 2]
    for row in metrics["rounds"]:
        assert {"train_loss", "train_acc", "val_acc", "test_map", "test_acc", "bytes_up", "bytes_down"} <= set(row)
    assert list(metrics)[-2:] == ["map", "epsilon"]
    assert metrics["map"] == printed["map"] and 0 <= metrics["map"] <= 1 and metrics["epsilon"] is None
    assert set(metrics["institutions"]) == {"baroque", "cubism", "impressionism"}
    assert (run_dir / "curves.png").stat().st_size > 0
    assert len(list((run_dir / "partition").glob("*.keys"))) == 3
    head = load_head(out)
    assert head.info["federated"]["strategy"] == "fedstyle"
    assert load_head(tmp_path / "c" / "heads" / "learned.pt").id == head.id  # saved like a central head
