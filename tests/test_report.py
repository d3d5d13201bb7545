"""`artlens eval report` on the tiny collection: every table, figure and skipped stage, in-process."""

import json
import shutil

import pytest
from conftest import make_folder

from artlens.cli import main
from artlens.collection import Collection
from artlens.errors import ArtlensError
from artlens.reports import learned as report_learned
from artlens.reports import papers as report_module
from artlens.reports.papers import ReportConfig, run_report


def private_copy(tiny_collection, root):
    shutil.copytree(tiny_collection.root, root)
    return Collection.open(root)


@pytest.fixture(scope="module")
def full(tiny_collection, tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    coll = private_copy(tiny_collection, base / "c")
    config = ReportConfig(label="style", skip=frozenset({"federated", "text"}), epochs=3)
    run_report(coll, config, base / "out")
    return base / "out", json.loads((base / "out" / "report.json").read_text())


@pytest.mark.slow
def test_report_writes_every_table_and_figure(full):
    out, report = full
    assert {"report.md", "report.json", "precision_at_k.png", "training_curves.png"} <= {p.name for p in out.iterdir()}
    methods = [r["method"] for r in report["retrieval"]]
    assert methods == ["colour histogram", "content (effnet-lite0)", "style: Gram block4", "style: Cosine block4",
                       "style: Gram·Cosine block4", "learned: ce head [content+style]",
                       "learned: triplet head [content+style]"]
    for row in report["retrieval"]:
        assert row["n_queries"] == report["n_test"] == 3
        for key in ("p@60", "ap@60", "ndcg@60", "map"):
            assert 0.0 <= row[key] <= 1.0
        assert row["curve"]["1"] >= row["curve"]["60"]  # 3 test artworks: P@60 is at most 2/60
    assert report["annotation"]["style"]["method"] == "head" and report["annotation"]["artist"]["method"] == "probe"
    models = [r["model"] for r in report["aicrs"]]
    assert models[0].startswith("image-only") and models[1].startswith("centralised fused")
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["loss"] > 0 for r in report["aicrs"][:2])
    assert report["stages"]["federated"] == {"status": "skipped", "reason": "skipped by --skip"}
    assert report["stages"]["map"] == {"status": "skipped", "reason": "fewer than 5 test artworks with vectors"}
    md = (out / "report.md").read_text()
    assert "| style: Gram block4 |" in md and "mAP 0.239, P@60 0.403" in md and "![P@k curves](precision_at_k.png)" in md


def test_stages_that_cannot_run_say_why(tiny_collection, tmp_path, monkeypatch):
    monkeypatch.setattr(report_module, "flower_available", lambda: "Flower is not installed")
    coll = private_copy(tiny_collection, tmp_path / "c")
    config = ReportConfig(label="style", text_columns=("no_such_column",), epochs=2,
                          skip=frozenset({"retrieval", "annotation", "map"}))
    report = run_report(coll, config, tmp_path / "out").as_dict()
    rows = {r["model"].split(":")[0]: r for r in report["aicrs"]}
    assert "--text-column" in rows["centralised fused (L-MFEA)"]["skipped"]
    assert "--text-column" in rows["text-only"]["skipped"]
    assert rows["federated FedAvg"]["skipped"] == rows["federated FedStyle"]["skipped"] == "Flower is not installed"
    assert report["stages"]["federated"]["status"] == "skipped"
    assert "skipped: Flower is not installed" in (tmp_path / "out" / "report.md").read_text()
    assert coll.config.text_columns == ("no_such_column",)
    assert Collection.open(coll.root).config.text_columns == ("title", "description")  # settings file untouched


def test_annotation_without_aspect_indexes_probes_the_cached_features(tiny_collection, tmp_path):
    coll = private_copy(tiny_collection, tmp_path / "c")
    shutil.rmtree(coll.root / "index")
    coll = Collection.open(coll.root)
    config = ReportConfig(label="style", epochs=2, skip=frozenset({"retrieval", "aicrs", "text", "federated", "map"}))
    report = run_report(coll, config, tmp_path / "out").as_dict()
    assert report["annotation"]["style"]["method"] == "head"
    artist = report["annotation"]["artist"]
    assert artist["method"] == "probe" and artist["n_test"] > 0 and 0.0 <= artist["top1"] <= artist["top3"] <= 1.0
    assert not (coll.root / "index").exists()  # nothing was written into the collection


def test_cli_rejects_unknown_stage(tiny_collection, tmp_path, capsys):
    assert main(["eval", "report", "-c", str(tiny_collection.root), "--label", "style", "--out", str(tmp_path),
                 "--skip", "retrieval,nonsense"]) == 2
    assert "nonsense" in capsys.readouterr().err
    assert main(["eval", "report", "-c", str(tiny_collection.root), "--label", "style", "--out", str(tmp_path / "r"),
                 "--text-column", "nosuch"]) == 2
    assert "unknown text column" in capsys.readouterr().err and not (tmp_path / "r").exists()
    with pytest.raises(ArtlensError):
        ReportConfig(label="style", k=0)


def test_embedding_map_separates_clusters(tmp_path):
    import numpy as np

    from artlens.reports.figures import embedding_map, plot_embedding_map

    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 0.1, (20, 64)), rng.normal(3, 0.1, (20, 64))])
    coords, method = embedding_map(x)
    assert method == "t-SNE" and coords.shape == (40, 2)
    a, b = coords[:20].mean(axis=0), coords[20:].mean(axis=0)
    spread = max(coords[:20].std(axis=0).max(), coords[20:].std(axis=0).max())
    assert np.linalg.norm(a - b) > 3 * spread
    assert plot_embedding_map(coords, ["a"] * 20 + ["b"] * 20, tmp_path / "map.png").stat().st_size > 1000


def test_no_extract_skips_rows_whose_features_are_not_cached(tiny_collection, tmp_path):
    from artlens.features import create_extractor

    coll = private_copy(tiny_collection, tmp_path / "c")
    assert coll.cache.count(create_extractor("gramcos-block4").id) == 0
    config = ReportConfig(label="style", extract=False, skip=frozenset({"learned", "annotation", "text", "federated"}))
    report = run_report(coll, config, tmp_path / "out").as_dict()
    rows = {r["method"]: r for r in report["retrieval"]}
    assert rows["style: Gram·Cosine block4"] == {"method": "style: Gram·Cosine block4",
                                                 "skipped": "no cached gramcos-block4 features"}
    assert "map" in rows["colour histogram"]
    assert coll.cache.count(create_extractor("gramcos-block4").id) == 0


@pytest.mark.parametrize("failing", ["fedavg", "fedstyle", "both"])
def test_each_federated_strategy_is_tried_and_the_stage_ran_if_one_did(failing, tiny_collection, tmp_path,
                                                                       monkeypatch):
    tried = []

    def fake_scores(collection, label, strategy, *args):
        tried.append(strategy)
        if failing in (strategy, "both"):
            raise ArtlensError(f"{strategy} cannot run here", "")
        return {"accuracy": 0.5}

    monkeypatch.setattr(report_module, "flower_available", lambda: None)
    monkeypatch.setattr(report_learned, "federated_scores", fake_scores)
    config = ReportConfig(label="style")
    report = report_module.Report(str(tiny_collection.root), config)
    if failing == "both":
        with pytest.raises(report_module._Skip, match="fedavg cannot run here.*fedstyle cannot run here"):
            report_module._federated_stage(tiny_collection, config, report, tmp_path)
    else:
        report_module._federated_stage(tiny_collection, config, report, tmp_path)  # ran: no _Skip
    assert tried == ["fedavg", "fedstyle"]
    rows = {r["model"].split(":")[0]: r for r in report.aicrs}
    for strategy, name in (("fedavg", "federated FedAvg"), ("fedstyle", "federated FedStyle")):
        if failing in (strategy, "both"):
            assert rows[name] == {"model": rows[name]["model"], "skipped": f"{strategy} cannot run here"}
        else:
            assert rows[name]["accuracy"] == 0.5 and "skipped" not in rows[name]


@pytest.mark.slow
def test_federated_stage_runs_fedavg_and_fedstyle(tmp_path):
    pytest.importorskip("flwr.simulation")
    # eight works per style: each institution keeps at least 3 training artworks after the held-out splits
    folder, labels = make_folder(tmp_path / "pictures", per_kind=8)
    coll = Collection.open(tmp_path / "c", create=True)
    coll.ingest(folder, labels)
    config = ReportConfig(label="style", epochs=2, rounds=2, local_epochs=1, cpus=1,
                          skip=frozenset({"retrieval", "annotation", "text", "map"}))
    report = run_report(coll, config, tmp_path / "out").as_dict()
    rows = {r["model"].split(":")[0]: r for r in report["aicrs"]}
    for name in ("federated FedAvg", "federated FedStyle"):
        assert "skipped" not in rows[name], rows[name]
        assert rows[name]["rounds"] == 2 and len(rows[name]["curve"]) == 2 and 0.0 <= rows[name]["accuracy"] <= 1.0
    assert (tmp_path / "out" / "federated" / "fedstyle" / "metrics.json").exists()
    assert "federated FedStyle" in (tmp_path / "out" / "report.md").read_text()
