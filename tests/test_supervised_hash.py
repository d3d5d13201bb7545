"""The label-aware hasher (CSQ hash centres on frozen features) and `artlens eval hashing --method supervised`."""

import json

import numpy as np
import pytest

from artlens.cli import main
from artlens.errors import ArtlensError
from artlens.hashing import (
    create_hasher,
    hash_centres,
    hashing_map_at_k,
    load_hasher,
    stratified_queries,
)


def noisy_classes(n_per_class=60, classes=6, dim=48, noise=2.0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    x = (rng.normal(size=(classes, dim))[y] + noise * rng.normal(size=(len(y), dim))).astype(np.float32)
    return x, np.array([f"class {c}" for c in y])


def test_hash_centres_are_far_apart():
    for n, bits in ((10, 16), (40, 16), (5, 24)):
        c = hash_centres(n, bits, seed=1)
        assert c.shape == (n, bits) and set(np.unique(c)) == {-1.0, 1.0}
        distance = 0.5 * (bits - c @ c.T)
        off = distance[~np.eye(n, dtype=bool)]
        hadamard = bits & (bits - 1) == 0 and n <= 2 * bits
        assert off.min() >= (bits // 2 if hadamard else bits // 4)


def test_supervised_codes_beat_itq_and_survive_save_load(tmp_path):
    x, y = noisy_classes()
    q, db = stratified_queries(y, 60, seed=0)
    scores = {}
    for method in ("itq", "supervised"):
        hasher = create_hasher(method, 16)
        extra = {"labels": y[db]} if method == "supervised" else {}
        hasher.fit(x[db], seed=0, **extra)
        scores[method] = hashing_map_at_k(hasher.encode(x[q]), hasher.encode(x[db]), y[q], y[db], k=100)
    assert scores["supervised"] > scores["itq"] + 0.1, scores
    hasher.save(tmp_path / "h.npz")
    again = load_hasher(tmp_path / "h.npz")
    assert np.array_equal(again.encode(x[q]), hasher.encode(x[q]))
    with pytest.raises(ArtlensError, match="labels"):
        create_hasher("supervised", 16).fit(x)
    with pytest.raises(ArtlensError, match="two classes"):
        create_hasher("supervised", 16).fit(x, labels=np.array(["one"] * len(x)))


def test_eval_hashing_supervised_reads_the_label_and_averages_seeds(tiny_collection, capsys):
    code = main(["eval", "hashing", "--collection", str(tiny_collection.root), "--label", "style", "--method",
                 "supervised", "--bits", "16", "--queries", "3", "--k", "5", "--seeds", "0,1", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    row = json.loads(out.out)
    assert row["method"] == "supervised" and row["hasher_seeds"] == [0, 1]
    assert row["map@k"] == pytest.approx(np.mean(list(row["map@k_by_seed"].values())))


def test_graded_codes_put_sure_items_on_their_centre_and_ambiguous_ones_between():
    from artlens.hashing.supervised import graded_codes

    centres = hash_centres(4, 16)
    sure = 8.0 * centres[1]  # every bit's output far on class 1's side
    between = 0.2 * centres[1] + 0.1 * centres[2]  # barely more class 1 than class 2
    codes = graded_codes(np.stack([sure, between]), centres, graded=2.0)
    assert set(np.unique(codes)) <= {-1.0, 1.0}
    distance = 0.5 * (16 - codes @ centres.T)
    assert distance[0, 1] == 0  # on its centre
    assert 0 < distance[1, 1] <= 4 and distance[1, 1] + distance[1, 2] == 8  # on the path from 1 to 2, nearer 1
    assert np.array_equal(graded_codes(np.stack([sure]), centres, graded=0.0), centres[[1]])
    x, y = noisy_classes(noise=3.0)
    q, db = stratified_queries(y, 60, seed=0)
    plain = create_hasher("supervised", 16, graded=0.0).fit(x[db], labels=y[db])
    graded = create_hasher("supervised", 16).fit(x[db], labels=y[db])
    raw = plain.encode(x[q])
    assert np.array_equal(raw, np.packbits(plain._outputs(x[q]) > 0, axis=1))  # graded 0: the signs
    assert not np.array_equal(graded.encode(x[q]), raw)
    with pytest.raises(ArtlensError, match="graded"):
        create_hasher("supervised", 16, graded=-1.0)
