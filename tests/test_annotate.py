"""Annotation: label-like columns, probe and head predictions, `artlens annotate` and `artlens eval annotation`."""

import json
import shutil

import numpy as np
import pytest

from artlens.annotation import Annotator, evaluate_annotation, label_columns
from artlens.cli import main


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_label_columns_are_the_categorical_ones(tiny_collection):
    # style: 3 classes of 4, artist: 2 of 6; title is unique per artwork
    assert label_columns(tiny_collection.catalog) == ["artist", "style"]


@pytest.fixture
def own_collection(tiny_collection, tmp_path):
    """A private copy of the tiny collection (annotation caches its probes in the collection)."""
    from artlens.collection import Collection

    shutil.copytree(tiny_collection.root, tmp_path / "coll")
    return Collection.open(tmp_path / "coll")


def test_probe_annotates_an_image_with_sorted_top_k(own_collection, tiny_folder):
    folder, _ = tiny_folder
    annotator = Annotator(own_collection)
    annotator.fit(["style", "artist"])
    result = annotator.annotate_image(str(folder / "images" / "dots_2.png"), k=3)
    assert set(result) == {"style", "artist"}
    style = result["style"]
    assert style["method"] == "probe" and style["top"][0]["label"] == "dots"
    probs = [t["probability"] for t in style["top"]]
    assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0, abs=1e-3)
    assert len(result["artist"]["top"]) == 2  # only two artists exist


def test_eval_annotation_scores_held_out_artworks(tiny_collection):
    result = evaluate_annotation(tiny_collection, ["style"], "test")
    style = result["style"]
    assert style["method"] == "probe" and style["n_test"] == 3 and style["n_train"] == 9
    assert style["top1"] == 1.0 and style["top3"] == 1.0  # three very different kinds of picture


def test_cli_annotate_and_eval_annotation_use_the_head_for_its_column(tiny_collection, tiny_folder, tmp_path, capsys):
    folder, _ = tiny_folder
    coll = tmp_path / "coll"
    shutil.copytree(tiny_collection.root, coll)
    code, out, err = run_cli(capsys, "annotate", folder / "images" / "rings_1.png", "--collection", coll, "--json")
    assert code == 0, err
    assert {c: a["method"] for c, a in json.loads(out)["annotations"].items()} == {"artist": "probe", "style": "probe"}
    code, _, err = run_cli(capsys, "train", "--collection", coll, "--label", "style", "--epochs", 5, "-q", "--json")
    assert code == 0, err
    code, out, err = run_cli(capsys, "annotate", folder / "images" / "rings_1.png", "--collection", coll, "--json",
                             "--label", "style")
    assert code == 0, err
    style = json.loads(out)["annotations"]["style"]
    assert style["method"] == "head" and len(style["top"]) == 3
    assert {t["label"] for t in style["top"]} == {"dots", "rings", "stripes"}
    code, out, err = run_cli(capsys, "eval", "annotation", "--collection", coll, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["style"]["method"] == "head" and result["artist"]["method"] == "probe"
    assert result["style"]["n_test"] == 3 and 0.0 <= result["style"]["top1"] <= result["style"]["top3"] <= 1.0
    code, out, err = run_cli(capsys, "annotate", folder / "images" / "rings_1.png", "--collection", coll)
    assert code == 0 and "style" in out and "head" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["annotate", "{tmp}/missing.png", "--collection", "{coll}"], "does not exist"),
        (["annotate", "{img}", "--collection", "{coll}", "--label", "genre"], "label column 'genre' not found"),
        (["eval", "annotation", "--collection", "{coll}", "--split", "train"], "cannot score annotation"),
    ],
)
def test_annotation_bad_input(args, message, tiny_collection, tiny_folder, tmp_path, capsys):
    folder, _ = tiny_folder
    subs = {"{tmp}": str(tmp_path), "{coll}": str(tiny_collection.root), "{img}": str(folder / "images" / "dots_0.png")}
    argv = []
    for a in args:
        for key, value in subs.items():
            a = a.replace(key, value)
        argv.append(a)
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and message in err and "hint:" in err


def test_probe_is_cached_until_its_data_changes(own_collection):
    coll, coll_path = own_collection, own_collection.root
    first = Annotator(coll)
    first.fit(["style"])
    cache = coll_path / "heads" / "probe-style.npz"
    assert cache.exists()
    stamp = cache.stat().st_mtime_ns
    again = Annotator(coll)
    again.fit(["style"])
    assert cache.stat().st_mtime_ns == stamp
    got, p1 = first.predict_ids("style", [1, 2])
    np.testing.assert_allclose(again.predict_ids("style", [1, 2])[1], p1)
    coll.catalog.set_metadata(1, {"style": "rings", "artist": "artist 0"})  # a relabelled artwork refits
    Annotator(coll).fit(["style"])
    assert cache.stat().st_mtime_ns != stamp


def test_eval_annotation_skips_a_default_column_with_a_class_of_one(own_collection, capsys):
    ids = own_collection.catalog.ids()
    arts = own_collection.catalog.get_many(ids)
    with own_collection.catalog.transaction():
        for i in ids:
            own_collection.catalog.set_metadata(i, {**arts[i].metadata, "medium": "wax" if i == ids[0] else "oil"})
    assert "medium" in label_columns(own_collection.catalog)
    code, out, err = run_cli(capsys, "eval", "annotation", "--collection", own_collection.root, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert {"style", "artist"} <= set(result) and "medium" not in result
    assert "1 labelled artwork" in result["skipped"]["medium"]
    code, out, err = run_cli(capsys, "eval", "annotation", "--collection", own_collection.root)
    assert code == 0 and "skipped medium:" in err and "style" in out
    # asked for by name, or nothing else left to score: an error
    code, _, err = run_cli(capsys, "eval", "annotation", "--collection", own_collection.root, "--label", "medium")
    assert code == 2 and "1 labelled artwork" in err
    with pytest.raises(Exception, match="no label column can be scored"):
        evaluate_annotation(own_collection, ["medium"], "test", skipped={})


def test_a_weak_match_is_flagged_from_a_threshold_measured_on_the_collection(tiny_collection, tiny_folder):
    from PIL import Image

    folder, _ = tiny_folder
    annotator = Annotator.for_collection(tiny_collection)
    near = annotator.annotate_image(str(folder / "images" / "dots_2.png"), k=2)["style"]
    assert near["weak"] is False and near["nearest"] == pytest.approx(1.0, abs=1e-3)  # a labelled work itself
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8))
    far = annotator.annotate_image(noise, k=2)["style"]
    assert far["weak"] is True and far["nearest"] < far["threshold"] == near["threshold"]
    assert annotator.familiarity("style") is annotator.familiarity("artist")  # measured once for both columns
    assert -1.0 < near["threshold"] < 1.0


def test_why_a_column_is_not_a_label_column(tiny_collection):
    from artlens.annotation import label_column_problem, no_label_columns_error

    assert label_column_problem("style", tiny_collection.catalog.column("style")) is None
    assert "single value ('Hokusai')" in label_column_problem("artist", {i: "Hokusai" for i in range(12)})
    assert "3 artworks per value" in label_column_problem("title", tiny_collection.catalog.column("title"))
    assert label_column_problem("year", {i: str(1900 + i % 3) for i in range(12)}) == "holds numbers"
    error = no_label_columns_error(tiny_collection.catalog)
    assert "'title' has 12 values for 12 artworks" in error.message and "--labels" in error.hint
