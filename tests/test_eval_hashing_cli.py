import json

import numpy as np

from artlens.cli import main
from artlens.reports.hashing import hashed_vectors


def test_eval_hashing_prints_one_object_per_bit_length(tiny_collection, capsys):
    code = main(["eval", "hashing", "--collection", str(tiny_collection.root), "--label", "style", "--method", "itq",
                 "--bits", "8,16", "--queries", "3", "--k", "5", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    rows = [json.loads(line) for line in out.out.splitlines()]
    assert [r["bits"] for r in rows] == [8, 16]
    assert all({"method", "bits", "map@k", "k", "n_queries"} <= set(r) for r in rows)
    assert all(0.0 <= r["map@k"] <= 1.0 and r["n_queries"] == 3 and r["method"] == "itq" for r in rows)


def test_eval_hashing_bad_input(tiny_collection, capsys):
    assert main(["eval", "hashing", "--collection", str(tiny_collection.root), "--label", "style", "--method", "nope"]) == 2
    assert "unknown hashing method" in capsys.readouterr().err
    assert main(["eval", "hashing", "--collection", str(tiny_collection.root), "--label", "style", "--bits", "12"]) == 2
    assert "multiples of 8" in capsys.readouterr().err


def test_eval_hashing_default_queries_fit_a_small_collection(tiny_collection, capsys):
    code = main(["eval", "hashing", "--collection", str(tiny_collection.root), "--label", "style", "--method", "lsh",
                 "--bits", "8", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out)["n_queries"] == 3  # 12 artworks in 3 styles: one query per class
    assert "3 queries" in out.err
    assert main(["eval", "hashing", "--collection", str(tiny_collection.root), "--label", "style",
                 "--queries", "12"]) == 2
    assert "leaves no database" in capsys.readouterr().err


def test_eval_hashing_reports_the_mean_over_three_hasher_seeds_by_default(tiny_collection, capsys):
    base = ["eval", "hashing", "--collection", str(tiny_collection.root), "--label", "style", "--method", "lsh",
            "--bits", "8", "--queries", "3", "--json"]
    assert main(base) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["hasher_seeds"] == [0, 1, 2] and set(row["map@k_by_seed"]) == {"0", "1", "2"}
    assert abs(row["map@k"] - sum(row["map@k_by_seed"].values()) / 3) < 1e-12
    assert main(base + ["--seeds", "1"]) == 0
    single = json.loads(capsys.readouterr().out)
    assert "map@k_by_seed" not in single and single["map@k"] == row["map@k_by_seed"]["1"]


def test_the_label_aware_hash_reads_content_and_style_by_default_and_features_combine(tiny_collection, capsys):
    base = ["eval", "hashing", "--collection", str(tiny_collection.root), "--label", "style", "--bits", "8",
            "--queries", "3", "--seeds", "0", "--json"]
    assert main(base + ["--method", "supervised"]) == 0
    assert json.loads(capsys.readouterr().out)["features"] == "effnet-lite0,style"
    assert main(base + ["--method", "itq"]) == 0
    assert json.loads(capsys.readouterr().out)["features"] == "effnet-lite0"

    ids, vectors = hashed_vectors(tiny_collection, "effnet-lite0,style", tiny_collection.catalog.ids())
    content_ids, content = tiny_collection.raw_vectors("effnet-lite0", tiny_collection.catalog.ids())
    style = tiny_collection.index("style")
    assert vectors.shape == (len(ids), content.shape[1] + style.manifest.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), np.sqrt(2), rtol=1e-5)  # two unit blocks
    row = list(content_ids).index(ids[1])
    np.testing.assert_allclose(vectors[1, : content.shape[1]], content[row] / np.linalg.norm(content[row]), rtol=1e-5)
    np.testing.assert_allclose(vectors[1, content.shape[1]:], style.vectors(ids[1:2])[0], rtol=1e-4, atol=1e-6)
