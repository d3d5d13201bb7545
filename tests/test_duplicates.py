"""Near-duplicate review (`artlens duplicates`, ``/api/duplicates``) on a small collection of drawn
pictures with planted edited copies (the real backbone; a few seconds)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from artlens.api import ApiSettings, create_app
from artlens.cli import main
from artlens.collection import Collection
from artlens.copyright.duplicates import (
    DuplicatePairs,
    DuplicatesConfig,
    find_duplicates,
)
from artlens.copyright.edits import edited, rng_for
from artlens.errors import ArtlensError

# (source picture, edit) of every planted copy; two copies of the first source make a group of three
# 19 works are too few to whiten 768 dimensions: their scores are those of centred taps, higher for
# unrelated pictures than the whitened scores the default threshold is calibrated on (thousands of works)
SMALL = 0.7
PLANTED = [("demo_0002.jpg", "jpeg"), ("demo_0002.jpg", "flip"), ("demo_0007.jpg", "colour")]


def run(args, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict:
    """16 demo paintings and the planted copies, catalogued (no features yet)."""
    from artlens.demo.generate import generate_demo_collection

    root = tmp_path_factory.mktemp("duplicates")
    images = root / "images"
    images.mkdir()
    generate_demo_collection(root / "demo", n=16, seed=3, size=160)
    for path in sorted((root / "demo" / "images").glob("*.jpg")):
        shutil.copy(path, images / f"demo_{path.name}")
    copies = {}
    for n, (source, family) in enumerate(PLANTED):
        out, _ = edited(Image.open(images / source).convert("RGB"), family, rng_for(7, n))
        out.save(images / f"copy{n}_{family}.png")
        copies[f"copy{n}_{family}.png"] = source
    collection = Collection.open(root / "collection", create=True)
    collection.ingest(images, features=False)
    return {"root": root / "collection", "images": images, "copies": copies}


def names(group) -> set[str]:
    return {Path(p).name for p in group.paths}


def test_planted_copies_are_grouped_with_their_source_and_nothing_else(planted):
    groups = find_duplicates(Collection.open(planted["root"]), DuplicatesConfig(threshold=SMALL))
    found = sorted(names(g) for g in groups)
    expected = sorted([{"demo_0002.jpg", "copy0_jpeg.png", "copy1_flip.png"}, {"demo_0007.jpg", "copy2_colour.png"}],
                      key=sorted)
    assert sorted(found, key=sorted) == expected, [(names(g), g.scores) for g in groups]
    big = groups[0]  # largest first
    assert len(big.ids) == 3 and big.ids == sorted(big.ids)
    assert all(SMALL <= s <= 1.0 + 1e-5 for s in big.scores)
    assert {(a, b) for a, b, _ in big.pairs} <= {(a, b) for a in big.ids for b in big.ids if a < b}


def test_a_threshold_of_one_leaves_no_group_and_a_low_one_joins_more(planted):
    collection = Collection.open(planted["root"])
    assert find_duplicates(collection, DuplicatesConfig(threshold=1.0)) == []
    loose = find_duplicates(collection, DuplicatesConfig(threshold=0.3, floor=0.3))
    strict = find_duplicates(collection, DuplicatesConfig(threshold=SMALL))
    assert sum(len(g.ids) for g in loose) >= sum(len(g.ids) for g in strict)


def test_groups_are_connected_components_of_the_pairs():
    # 0-1 and 1-2 link 0, 1, 2 (0-2 scores low); 3-4 link at 0.6, below a 0.7 threshold
    pairs = DuplicatePairs(np.array([10, 11, 12, 13, 14]), [f"w{i}" for i in range(5)],
                           np.array([0, 1, 0, 3]), np.array([1, 2, 2, 4]), np.array([0.9, 0.8, 0.31, 0.6], np.float32),
                           floor=0.3)
    groups = pairs.groups(0.7)
    assert [g.ids for g in groups] == [[10, 11, 12]]
    assert groups[0].scores == pytest.approx([0.9, 0.9, 0.8])
    assert [g.ids for g in pairs.groups(0.5)] == [[10, 11, 12], [13, 14]]
    with pytest.raises(ArtlensError):
        pairs.groups(0.2)  # below the floor the pairs were kept down to


def test_cli_json_is_one_group_per_line_and_text_lists_the_works(planted, capsys):
    code, out, _ = run(["duplicates", "--collection", planted["root"], "--threshold", SMALL, "--json", "-q"], capsys)
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 2 and all({"ids", "paths", "scores", "pairs"} <= set(r) for r in rows)
    assert len(rows[0]["ids"]) == len(rows[0]["paths"]) == len(rows[0]["scores"]) == 3
    code, out, _ = run(["duplicates", "-c", planted["root"], "--threshold", SMALL, "-q"], capsys)
    assert code == 0 and out.startswith("2 group(s) of copies, 5 works, at threshold 0.700")
    assert "copy2_colour.png" in out and "demo_0007.jpg" in out


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes, but SQLite's -wal/-shm sidecars (opening a database makes them)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


@pytest.mark.parametrize("threshold", ["0", "-0.2", "1.5", "nan"])
def test_a_threshold_outside_0_1_is_a_one_line_error_and_changes_nothing(planted, tmp_path, capsys, threshold):
    fresh = tmp_path / "c"  # a collection whose copy features were never computed
    collection = Collection.open(fresh, create=True)
    collection.ingest(planted["images"], features=False)
    collection.close()
    before = snapshot(fresh)
    code, out, err = run(["duplicates", "-c", fresh, "--threshold", threshold], capsys)
    assert code == 2 and not out and err.startswith("error:") and "(0, 1]" in err and "Traceback" not in err
    assert snapshot(fresh) == before


def test_an_empty_collection_is_a_one_line_error(tmp_path, capsys):
    Collection.open(tmp_path / "empty", create=True).close()
    before = snapshot(tmp_path / "empty")
    code, out, err = run(["duplicates", "-c", tmp_path / "empty"], capsys)
    assert code == 2 and not out and "holds no works" in err and "hint: add images" in err
    assert snapshot(tmp_path / "empty") == before


def test_the_api_reviews_a_collection_whose_features_are_computed(planted, tmp_path):
    fresh = tmp_path / "c"
    collection = Collection.open(fresh, create=True)
    collection.ingest(planted["images"], features=False)
    settings = ApiSettings(collection=fresh, thumbnail_dir=tmp_path / "thumbs")
    with TestClient(create_app(settings, collection=collection, warm_up=False)) as client:
        response = client.get("/api/duplicates")
        assert response.status_code == 409 and "artlens duplicates" in response.json()["hint"]
        find_duplicates(collection)  # computes and caches the copy features
        answer = client.get("/api/duplicates").json()
        assert answer["threshold"] == answer["default_threshold"] == DuplicatesConfig.threshold
        answer = client.get("/api/duplicates", params={"threshold": SMALL}).json()
        assert answer["threshold"] == SMALL and answer["works"] == 19
        assert answer["groups_total"] == len(answer["groups"]) == 2
        group = answer["groups"][0]
        assert len(group["ids"]) == 3 and [w["id"] for w in group["works"]] == group["ids"]
        assert all(w["thumbnail"] == f"/api/artworks/{w['id']}/thumbnail" for w in group["works"])
        assert str(planted["images"]) not in json.dumps(answer)  # no path leaves the server
        assert client.get("/api/duplicates", params={"threshold": 1.0}).json()["groups"] == []
        for bad in (0, 1.5, 0.1):
            assert client.get("/api/duplicates", params={"threshold": bad}).status_code == 422


def test_the_general_copy_head_as_descriptor_needs_it_built_and_then_reviews(planted, tmp_path, capsys, monkeypatch):
    from artlens.copyright.config import RobustConfig
    from artlens.copyright.general import GeneralHeadConfig, build_general
    from artlens.files import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    code, out, err = run(["duplicates", "-c", planted["root"], "--descriptor", "general", "--json", "-q"], capsys)
    assert code == 2 and not out and "artlens registry general-head" in err
    code, _, err = run(["duplicates", "-c", planted["root"], "--descriptor", "sscd", "-q"], capsys)
    assert code == 2 and "unknown duplicate descriptor" in err
    build_general(GeneralHeadConfig(pictures=8, size=96, views=2, calibration_pictures=4,
                                    head=RobustConfig(epochs=2, views_per_work=2)))
    code, out, err = run(["duplicates", "-c", planted["root"], "--descriptor", "general", "--threshold", "0.3",
                          "--json", "-q"], capsys)
    assert code == 0, err
    groups = [json.loads(line) for line in out.splitlines()]
    assert groups and all(set(g) >= {"ids", "paths", "scores"} and len(g["ids"]) >= 2 for g in groups)
