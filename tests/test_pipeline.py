"""End to end on a tiny collection: ingest -> features -> indexes -> search / eval, through the CLI."""

import json

import numpy as np
import pytest

from artlens.cli import main
from artlens.search import SearchEngine


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_collection_has_every_aspect(tiny_collection):
    stats = tiny_collection.stats()
    assert stats["artworks"] == 12
    assert set(stats["indexes"]) == {"content", "style", "colour", "text"}
    assert all(e["cached"] >= 12 for n, e in stats["extractors"].items() if n != "minilm")


def test_search_by_image_finds_itself_and_its_kind(tiny_collection, tiny_folder):
    folder, _ = tiny_folder
    engine = SearchEngine(tiny_collection)
    result = engine.search(image=str(folder / "images" / "dots_1.png"), k=4)
    assert result.hits[0].path.endswith("dots_1.png")
    assert result.hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert [h.metadata["style"] for h in result.hits[:4]].count("dots") >= 3
    assert set(result.hits[0].aspects) >= {"content", "style", "colour"}


def test_search_by_text_and_filters(tiny_collection):
    engine = SearchEngine(tiny_collection)
    result = engine.search(text="concentric green rings", k=3)
    assert all(h.metadata["style"] == "rings" for h in result.hits)
    filtered = engine.search(text="concentric green rings", k=5, filters={"style": ["dots"]})
    assert filtered.hits and all(h.metadata["style"] == "dots" for h in filtered.hits)
    either_case = engine.search(text="concentric green rings", k=5, filters={"style": ["DOTS"]})
    assert [h.id for h in either_case.hits] == [h.id for h in filtered.hits]


def test_weights_or_aspect_of_an_aspect_without_index_say_how_to_get_one(tiny_collection, tmp_path, capsys):
    import shutil

    bare = tmp_path / "bare"  # no text index and no learned head
    shutil.copytree(tiny_collection.root, bare, ignore=shutil.ignore_patterns("text", "heads", "learned"))
    code, _, err = run_cli(capsys, "search", "--id", 1, "--weights", "text=1", "--collection", bare)
    assert code == 2 and "aspect 'text' has no index in this collection" in err and "--labels" in err
    code, _, err = run_cli(capsys, "search", "--id", 1, "--aspect", "learned", "--collection", bare)
    assert code == 2 and "'learned' has no index" in err and "artlens train" in err and "--head FILE" in err
    code, _, err = run_cli(capsys, "search", "--id", 1, "--weights", "learned=1", "--collection", bare)
    assert code == 2 and "artlens train" in err
    code, _, err = run_cli(capsys, "search", "--id", 1, "--weights", "content=0", "--collection", bare)
    assert code == 2 and "all aspect weights are zero" in err


def test_a_filter_value_that_matches_nothing_is_an_error_listing_the_values(tiny_collection, capsys):
    code, out, err = run_cli(capsys, "search", "--id", 1, "--filter", "style=Nonexistent",
                             "--collection", tiny_collection.root)
    assert code == 2 and not out
    assert "no artwork has style = 'Nonexistent'" in err and "dots" in err and "stripes" in err
    code, out, err = run_cli(capsys, "search", "--id", 1, "--filter", "style=Dots", "--collection",
                             tiny_collection.root, "--json")
    assert code == 0, err
    assert {h["metadata"]["style"] for h in json.loads(out)["results"]} == {"dots"}


def test_search_by_id_excludes_itself_and_mixes_weights(tiny_collection):
    engine = SearchEngine(tiny_collection)
    first = tiny_collection.catalog.ids()[0]
    result = engine.search(artwork_id=first, k=5, weights={"style": 1.0})
    assert first not in [h.id for h in result.hits]
    assert result.weights == {"style": 1.0}
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
    np.testing.assert_allclose(scores, [h.aspects["style"] for h in result.hits], atol=1e-5)


def test_cli_search_json_and_table(tiny_collection, tiny_folder, capsys):
    folder, _ = tiny_folder
    code, out, _ = run_cli(capsys, "search", "--image", folder / "images" / "rings_0.png", "-k", 3,
                           "--collection", tiny_collection.root, "--json")
    assert code == 0
    data = json.loads(out)
    assert len(data["results"]) == 3 and {"id", "score", "aspects"} <= set(data["results"][0])
    code, out, _ = run_cli(capsys, "search", "--text", "red dots", "--collection", tiny_collection.root)
    assert code == 0 and "Red dots" in out


def test_cli_stats_and_eval(tiny_collection, capsys):
    code, out, _ = run_cli(capsys, "stats", "--collection", tiny_collection.root, "--json")
    data = json.loads(out)
    assert code == 0 and data["artworks"] == 12 and data["skipped"] == 0 and "effnet-lite0" in data["extractors"]
    code, out, _ = run_cli(capsys, "eval", "retrieval", "--label", "style", "--collection", tiny_collection.root, "--json")
    data = json.loads(out)
    assert code == 0 and data["n_queries"] == 12
    assert {"map", "p@10", "p@60", "ndcg@60"} <= set(data)
    assert data["map"] > 0.6  # three very different kinds of picture


@pytest.mark.parametrize(
    "args, message",
    [
        (["search", "--text", "x", "--collection", "{missing}"], "no artlens collection"),
        (["search", "--image", "{notimage}", "--collection", "{coll}"], "not an image"),
        (["search", "--image", "{nofile}", "--collection", "{coll}"], "does not exist"),
        (["search", "--text", "x", "--id", "1", "--collection", "{coll}"], "exactly one query"),
        (["search", "--id", "1", "--aspect", "shape", "--collection", "{coll}"], "aspect"),
        (["search", "--text", "x", "--filter", "nocolumn=1", "--collection", "{coll}"], "unknown filter"),
        (["eval", "retrieval", "--label", "genre", "--collection", "{coll}"], "label column 'genre' not found"),
        (["ingest", "{missing}", "--collection", "{tmp}/new"], "does not exist"),
    ],
)
def test_cli_bad_input_is_one_clear_error(args, message, tiny_collection, tmp_path, capsys):
    (tmp_path / "fake.jpg").write_text("hello")
    subs = {"{missing}": str(tmp_path / "missing"), "{coll}": str(tiny_collection.root), "{tmp}": str(tmp_path),
            "{notimage}": str(tmp_path / "fake.jpg"), "{nofile}": str(tmp_path / "nofile.jpg")}
    before = tiny_collection.stats()
    argv = [a for a in args]
    for i, a in enumerate(argv):
        for key, value in subs.items():
            a = a.replace(key, value)
        argv[i] = a
    code, _, err = run_cli(capsys, *argv)
    assert code != 0
    assert message in err
    assert err.strip().startswith("error:")
    assert tiny_collection.stats() == before


def test_reingest_is_incremental(tiny_folder, tmp_path, capsys):
    folder, labels = tiny_folder
    coll = tmp_path / "c"
    assert run_cli(capsys, "ingest", folder, "--labels", labels, "--collection", coll, "-q", "--json")[0] == 0
    code, out, _ = run_cli(capsys, "ingest", folder, "--labels", labels, "--collection", coll, "-q", "--json")
    data = json.loads(out)
    assert code == 0 and data["ingest"]["unchanged"] == 12 and data["features"]["computed"] == {}


def test_unknown_extractor_is_refused_before_anything_is_created(tiny_folder, tmp_path, capsys):
    folder, labels = tiny_folder
    code, _, err = run_cli(capsys, "ingest", folder, "--collection", tmp_path / "c", "--extractor", "style=nope-block9")
    assert code != 0 and "unknown extractor" in err and "gram-block4" in err
    assert not (tmp_path / "c").exists()


def test_switching_an_aspect_extractor_rebuilds_its_index(tiny_folder, tmp_path, capsys):
    folder, labels = tiny_folder
    coll = tmp_path / "c"
    code, out, _ = run_cli(capsys, "ingest", folder, "--labels", labels, "--collection", coll, "-q", "--json",
                           "--extractor", "style=gramcos-block3")
    assert code == 0
    code, out, _ = run_cli(capsys, "stats", "--collection", coll, "--json")
    assert json.loads(out)["indexes"]["style"]["extractor"] == "gramcos-block3/v1"


def test_fast_search_agrees_with_exact_search(tiny_collection, tiny_folder, capsys):
    folder, _ = tiny_folder
    engine = SearchEngine(tiny_collection)
    query = str(folder / "images" / "stripes_2.png")
    exact = engine.search(image=query, k=5)
    fast = engine.search(image=query, k=5, fast=True)
    assert [h.id for h in fast.hits] == [h.id for h in exact.hits]  # shortlist covers the tiny collection
    assert [h.score for h in fast.hits] == pytest.approx([h.score for h in exact.hits], abs=1e-5)
    code, out, _ = run_cli(capsys, "search", "--text", "red dots", "--fast", "-k", 2,
                           "--collection", tiny_collection.root, "--json")
    assert code == 0 and all(r["metadata"]["style"] == "dots" for r in json.loads(out)["results"])


@pytest.mark.parametrize("case", ["missing folder", "empty folder", "csv paths elsewhere", "missing csv"])
def test_failed_first_ingest_leaves_no_collection_behind(case, tiny_folder, tmp_path, capsys):
    folder, _ = tiny_folder
    (tmp_path / "empty").mkdir()
    bad_csv = tmp_path / "elsewhere.csv"
    bad_csv.write_text("path,style\nnot/here.png,x\n")
    args = {"missing folder": [tmp_path / "nope"], "empty folder": [tmp_path / "empty"],
            "csv paths elsewhere": [folder, "--labels", bad_csv],
            "missing csv": [folder, "--labels", tmp_path / "nope.csv"]}[case]
    for target, existed in ((tmp_path / "new", False), (tmp_path / "mine", True)):
        if existed:  # a folder the user made, with a file of theirs: both stay
            target.mkdir()
            (target / "notes.txt").write_text("mine")
        code, _, err = run_cli(capsys, "ingest", *args, "--collection", target, "-q")
        assert code == 2 and err.startswith("error:")
        if existed:
            assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
        else:
            assert not target.exists()


def test_failed_ingest_into_an_existing_collection_keeps_it(tiny_collection, tmp_path, capsys):
    before = sorted(p.name for p in tiny_collection.root.iterdir())
    code, _, err = run_cli(capsys, "ingest", tmp_path / "nope", "--collection", tiny_collection.root, "-q")
    assert code == 2 and sorted(p.name for p in tiny_collection.root.iterdir()) == before


def test_filter_values_repeat_without_cost_and_decades_expand():
    from artlens.search.filters import match_values

    stored = ["1885", "c. 1889", "1890", "Baroque"]
    matched, unmatched = match_values(stored, ["1880s"] * 10_000 + ["baroque", "nope", "nope"])
    assert matched == ["1885", "c. 1889", "Baroque"] and unmatched == ["nope"]
