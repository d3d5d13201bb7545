"""Partitions of a collection into institutions, and what each institution reads."""

import json

import numpy as np
import pytest
from feature_collections import make_feature_collection

from artlens.errors import ArtlensError
from artlens.federated.institution import InstitutionSource, load_institution
from artlens.federated.partition import (
    Partition,
    by_column,
    dirichlet,
    from_file,
    iid,
    make_partition,
    read_keys,
)
from artlens.models import HeadShape

CLASSES = ("baroque", "cubism", "impressionism", "ukiyo-e")


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    coll = make_feature_collection(tmp_path_factory.mktemp("fed") / "c", CLASSES, per_class=15,
                                   extra={"institution": lambda i, c: f"museum-{i % 3}"})
    yield coll
    coll.close()


def labels_by_key(coll, column="style"):
    md5s = coll.catalog.md5s()
    return {md5s[i]: v for i, v in coll.catalog.column(column).items()}


def test_by_label_gives_one_institution_per_class(collection):
    labels = labels_by_key(collection)
    part = make_partition("style", labels, {"style": labels})
    assert part.names == sorted(CLASSES)
    for name, keys in part.institutions.items():
        assert {labels[k] for k in keys} == {name}
    assert sorted(k for keys in part.institutions.values() for k in keys) == sorted(labels)


def test_by_column_groups_by_its_values(collection):
    labels = labels_by_key(collection)
    part = make_partition("column:institution", labels, {"institution": labels_by_key(collection, "institution")})
    assert part.names == ["museum-0", "museum-1", "museum-2"]
    assert sum(part.sizes().values()) == len(labels)


def test_dirichlet_is_seeded_covers_everything_and_skews_with_small_alpha(collection):
    labels = labels_by_key(collection)
    a = dirichlet(labels, 3, alpha=0.1, seed=1)
    b = dirichlet(labels, 3, alpha=0.1, seed=1)
    assert a.institutions == b.institutions
    assert sorted(k for keys in a.institutions.values() for k in keys) == sorted(labels)
    assert min(a.sizes().values()) >= 2

    def dominant_share(part):
        shares = []
        for keys in part.institutions.values():
            counts = np.bincount([CLASSES.index(labels[k]) for k in keys], minlength=len(CLASSES))
            shares.append(counts.max() / counts.sum())
        return float(np.mean(shares))

    assert dominant_share(a) > dominant_share(dirichlet(labels, 3, alpha=100.0, seed=1))


def test_iid_and_counts_are_checked(collection):
    labels = labels_by_key(collection)
    part = iid(list(labels), 4, seed=0)
    assert sorted(part.sizes().values()) == [15, 15, 15, 15]
    with pytest.raises(ArtlensError, match="at least 2 institutions"):
        iid(list(labels), 1)
    with pytest.raises(ArtlensError, match="too few"):
        dirichlet(dict(list(labels.items())[:5]), 4, 0.5)


def test_an_unreadable_dirichlet_alpha_is_a_clear_error(collection):
    labels = labels_by_key(collection)
    with pytest.raises(ArtlensError, match="'abc'.*dirichlet alpha") as caught:
        make_partition("dirichlet:abc", labels, institutions=3)
    assert "dirichlet:0.3" in caught.value.hint
    assert len(make_partition("dirichlet:0.3", labels, institutions=3).institutions) == 3


def test_explicit_csv_and_json_files(collection, tmp_path):
    md5s = collection.catalog.md5s()
    ids = sorted(md5s)
    csv_path = tmp_path / "who.csv"
    csv_path.write_text("institution,id\n" + "".join(f"{'a' if i % 2 else 'b'},{i}\n" for i in ids) + "c,99999\n")
    part = from_file(csv_path, md5s)
    assert part.sizes() == {"a": sum(i % 2 for i in ids), "b": sum(1 - i % 2 for i in ids)}
    assert "name no artwork" in part.notes[0]
    saved = part.save(tmp_path / "part.json")
    assert from_file(saved, md5s).institutions == part.institutions
    bad = tmp_path / "bad.csv"
    bad.write_text("who,md5\nx,y\n")
    with pytest.raises(ArtlensError, match="institution"):
        from_file(bad, md5s)
    with pytest.raises(ArtlensError, match="no such column"):
        make_partition("genre", labels_by_key(collection), {})


def test_each_institution_reads_only_its_own_key_file(collection, tmp_path):
    labels = labels_by_key(collection)
    part = by_column(labels, "style")
    files = part.write_institution_files(tmp_path / "keys")
    assert set(read_keys(files["cubism"])) == set(part.institutions["cubism"])
    specs = _specs()
    data = load_institution(InstitutionSource("cubism", str(collection.root), str(files["cubism"])), specs, "style")
    assert set(data.labels["train"]) | set(data.labels["val"]) == {"cubism"}
    mine = set(part.institutions["cubism"])
    assert set(data.train.keys) <= mine and set(data.val.keys if data.val else []) <= mine


def test_institution_with_too_little_data_is_refused_by_name(collection, tmp_path):
    one = tmp_path / "one.keys"
    one.write_text(next(iter(labels_by_key(collection))) + "\n")
    with pytest.raises(ArtlensError) as info:
        load_institution(InstitutionSource("Tiny Gallery", str(collection.root), str(one)), _specs(), "style")
    assert "Tiny Gallery" in info.value.message and "at least 3" in info.value.message
    assert "leave it out" in info.value.hint
    with pytest.raises(ArtlensError, match="Nowhere Museum.*no artlens collection"):
        load_institution(InstitutionSource("Nowhere Museum", str(tmp_path / "missing")), _specs(), "style")
    with pytest.raises(ArtlensError, match="set up for features"):
        load_institution(InstitutionSource("Other", str(collection.root), features=("effnet-lite0",)), _specs(), "style")
    empty = tmp_path / "empty.keys"
    empty.write_text("")
    with pytest.raises(ArtlensError, match="'Empty Archive' has 0 labelled artwork"):
        load_institution(InstitutionSource("Empty Archive", str(collection.root), str(empty)), _specs(), "style")


def test_an_institution_computing_features_differently_is_told_how_to_match_the_server(collection):
    import dataclasses

    server = [dataclasses.replace(s, extractor_id=s.extractor_id + "-v0") if s.extractor == "gram-block4" else s
              for s in _specs()]
    with pytest.raises(ArtlensError) as info:
        load_institution(InstitutionSource("Old Version Museum", str(collection.root)), server, "style")
    assert "Old Version Museum" in info.value.message and "computes features differently" in info.value.message
    assert "same artlens version" in info.value.hint and "--features" in info.value.hint


def test_partition_json_is_plain(tmp_path):
    path = Partition({"a": ["k1"], "b": ["k2", "k3"]}, "column:x").save(tmp_path / "p.json")
    assert json.loads(path.read_text())["institutions"] == {"a": ["k1"], "b": ["k2", "k3"]}


def _specs():
    from artlens.federated.head import input_specs

    return input_specs(("colour-hist", "gram-block4"), HeadShape(reduce_dims=4))


def test_an_institution_whose_artworks_were_held_out_is_told_so(collection, tmp_path):
    md5s = collection.catalog.md5s()
    ids = sorted(md5s)
    held_out = ids[0]  # the simulation leaves the test split out of the pool it partitions
    pool = {k: v for k, v in labels_by_key(collection).items() if k != md5s[held_out]}
    csv_path = tmp_path / "who.csv"
    csv_path.write_text("institution,id\n" + f"tiny,{held_out}\n" + "".join(f"big,{i}\n" for i in ids[1:]))
    part = make_partition(str(csv_path), pool, md5s=md5s)
    assert part.sizes()["tiny"] == 0 and part.listed["tiny"] == 1
    files = part.write_institution_files(tmp_path / "keys")
    source = InstitutionSource("tiny", str(collection.root), str(files["tiny"]), listed=part.listed["tiny"])
    with pytest.raises(ArtlensError) as info:
        load_institution(source, _specs(), "style")
    assert "1 artwork(s) in its partition, 0 left for training after holding out the test split" in info.value.message
