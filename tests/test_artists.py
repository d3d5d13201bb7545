"""Artist profiles: building, privacy of the file, DP, merging, search, leave-one-out evaluation, and
the CLI and API on the tiny collection (style stands in for the artist: three kinds of pictures)."""

import dataclasses
import json
import os
import re
import shutil
import time

import numpy as np
import pytest

from artlens.artists.evaluate import nearest_artwork_scores, profile_scores, ranking
from artlens.artists.portfolio import ArtistSpace, learned_space
from artlens.artists.profiles import (
    ArtistProfile,
    ProfileConfig,
    ProfileSet,
    build_profiles,
    cluster_works,
    gaussian_sigma,
    merge_profiles,
    spherical_kmeans,
)
from artlens.artists.search import ArtistSearch, combine_prototypes, score_profiles
from artlens.cli import main
from artlens.errors import ArtifactMismatchError, ArtlensError
from artlens.vectors import l2_normalise


def clustered(seed=0, per=(12, 12), dim=16, spread=0.15):
    """Unit vectors around one random direction per group."""
    rng = np.random.default_rng(seed)
    centres = l2_normalise(rng.normal(size=(len(per), dim)))
    rows = [l2_normalise(c + spread * rng.normal(size=(n, dim))) for c, n in zip(centres, per)]
    return np.concatenate(rows).astype(np.float32), centres


# -- profiles -------------------------------------------------------------------------------------
def test_spherical_kmeans_finds_the_modes_and_small_clusters_are_dissolved():
    x, centres = clustered(per=(15, 15))
    found, assign = spherical_kmeans(x, 2, seed=1)
    assert sorted(np.bincount(assign).tolist()) == [15, 15]
    assert np.all(np.max(found @ centres.T, axis=0) > 0.95)
    x, _ = clustered(per=(28, 2))  # a mode of two works must not become its own prototype
    centres, assign = cluster_works(x, ProfileConfig(works_per_prototype=10))
    assert len(centres) >= 1 and np.bincount(assign).min() >= ProfileConfig().min_prototype_works


def test_profiles_count_works_per_prototype_and_cap_prototypes():
    x, _ = clustered(per=(40, 5, 30))
    labels = ["a"] * 40 + ["b"] * 5 + ["c"] * 30
    profiles = build_profiles(x, labels, "fusion-x", ProfileConfig(max_prototypes=3, works_per_prototype=10))
    assert profiles.names() == ["a", "b", "c"]
    assert [p.works for p in profiles.profiles.values()] == [40, 5, 30]
    assert all(p.counts.sum() == p.works for p in profiles.profiles.values())
    assert len(profiles.profiles["b"].counts) == 1 and len(profiles.profiles["a"].counts) <= 3
    assert all(np.allclose(np.linalg.norm(p.prototypes, axis=1), 1, atol=1e-5) for p in profiles.profiles.values())


def test_an_artist_with_one_work_is_a_clear_error():
    x, _ = clustered(per=(5, 1))
    with pytest.raises(ArtlensError) as err:
        build_profiles(x, ["a"] * 5 + ["solo"], "fusion-x")
    assert "'solo'" in err.value.message and "fewer than 2 works" in err.value.message
    assert "leave those artists out" in err.value.hint


def test_dp_profile_is_one_noisy_mean_calibrated_to_the_works():
    x, _ = clustered(per=(50,), dim=64)
    config = ProfileConfig(epsilon=8.0)
    profile = build_profiles(x, ["a"] * 50, "fusion-x", config).profiles["a"]
    assert profile.prototypes.shape == (1, 64) and profile.counts.tolist() == [50]
    privacy = profile.privacy
    assert privacy["epsilon"] == 8.0 and privacy["delta"] == 1e-5 and privacy["sensitivity"] == pytest.approx(2 / 50)
    # half the works, twice the sensitivity, twice the noise; more epsilon, less noise
    assert gaussian_sigma(8, 1e-5, 2 / 25) == pytest.approx(2 * privacy["sigma"])
    assert gaussian_sigma(1, 1e-5, 2 / 50) > 4 * privacy["sigma"]
    # the noise is drawn afresh: two releases differ, and stay close to the true mean
    again = build_profiles(x, ["a"] * 50, "fusion-x", config).profiles["a"]
    mean = l2_normalise(x.mean(axis=0, keepdims=True))[0]
    assert not np.allclose(profile.prototypes, again.prototypes)
    assert float(l2_normalise(profile.prototypes)[0] @ mean) > 0.5
    with pytest.raises(ArtlensError, match="epsilon must be a positive number"):
        gaussian_sigma(0, 1e-5, 0.1)


def test_file_round_trip_schema_and_head_check(tmp_path):
    x, _ = clustered()
    profiles = build_profiles(x, ["a"] * 12 + ["b"] * 12, "fusion-abc")
    path = profiles.save(tmp_path / "p.json")
    loaded = ProfileSet.load(path)
    assert loaded.head_id == "fusion-abc" and loaded.names() == ["a", "b"]
    assert np.allclose(loaded.profiles["a"].prototypes, profiles.profiles["a"].prototypes, atol=1e-5)
    with pytest.raises(ArtifactMismatchError, match="made with head fusion-abc"):
        loaded.require_head("fusion-other")
    data = json.loads(path.read_text())
    assert loaded.sources == profiles.sources and data["sources"] == list(profiles.sources)
    data["sources"] = 1  # written before publication ids: the content names the publication
    (tmp_path / "counted.json").write_text(json.dumps(data))
    assert ProfileSet.load(tmp_path / "counted.json").publications() == profiles.sources
    data["schema_version"] = 99
    (tmp_path / "old.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactMismatchError, match="schema version 99"):
        ProfileSet.load(tmp_path / "old.json")
    (tmp_path / "foreign.json").write_text("{}")
    with pytest.raises(ArtlensError, match="not an artlens profile file"):
        ProfileSet.load(tmp_path / "foreign.json")


def test_merge_combines_the_same_artist_by_counts_and_needs_one_head():
    x, _ = clustered(per=(20, 20, 20))
    one = build_profiles(x[:30], ["a"] * 20 + ["b"] * 10, "fusion-h")
    two = build_profiles(x[30:], ["b"] * 10 + ["c"] * 20, "fusion-h")
    merged = merge_profiles([one, two])
    assert merged.names() == ["a", "b", "c"] and merged.sources == one.sources + two.sources
    b = merged.profiles["b"]
    assert b.works == 20 and b.counts.sum() == 20 and len(b.counts) <= 3
    assert merged.profiles["a"].works == 20 and merged.profiles["c"].works == 20
    private = [build_profiles(x[:30], ["a"] * 20 + ["b"] * 10, "fusion-h", ProfileConfig(epsilon=8)),
               build_profiles(x[30:], ["b"] * 10 + ["c"] * 20, "fusion-h", ProfileConfig(epsilon=8))]
    b = merge_profiles(private).profiles["b"]
    parts = [p.profiles["b"] for p in private]
    assert b.works == 20 and b.counts.tolist() == [20] and b.privacy["epsilon"] == 8
    assert np.allclose(b.prototypes[0], (parts[0].prototypes[0] + parts[1].prototypes[0]) / 2, atol=1e-6)
    with pytest.raises(ArtlensError, match="differentially private profile in one file and an exact one"):
        merge_profiles([one, private[1]])
    with pytest.raises(ArtifactMismatchError, match="different heads: fusion-h, fusion-other"):
        merge_profiles([one, build_profiles(x[:30], ["a"] * 20 + ["b"] * 10, "fusion-other")])


def test_merge_refuses_a_publication_or_a_profile_twice():
    x, _ = clustered(per=(20, 20, 20))
    one = build_profiles(x[:30], ["a"] * 20 + ["b"] * 10, "fusion-h")
    two = build_profiles(x[30:], ["b"] * 10 + ["c"] * 20, "fusion-h")
    assert len(one.sources) == 1 and one.sources != two.sources
    with pytest.raises(ArtlensError, match="set 1 and profile set 2 both hold publication") as err:
        merge_profiles([one, one])
    assert "count its artists' works twice" in err.value.message
    both = merge_profiles([one, two])
    with pytest.raises(ArtlensError, match="both hold publication"):  # a file already in the merge
        merge_profiles([both, two], labels=["all.json", "b.json"])
    # the same profile again in another publication (an institution republishing an artist)
    again = build_profiles(x[:20], ["a"] * 20, "fusion-h")
    with pytest.raises(ArtlensError, match="artist 'a' has the same profile in one.json and again.json"):
        merge_profiles([one, again], labels=["one.json", "again.json"])
    # publishing the same works again gives the same id; DP releases never do
    assert build_profiles(x[:30], ["a"] * 20 + ["b"] * 10, "fusion-h").sources == one.sources
    dp = [build_profiles(x[:30], ["a"] * 20 + ["b"] * 10, "fusion-h", ProfileConfig(epsilon=8)) for _ in range(2)]
    assert dp[0].sources != dp[1].sources


# -- search ---------------------------------------------------------------------------------------
def test_references_combine_by_the_mean_of_best_prototype_similarities():
    e = np.eye(4, dtype=np.float32)
    profiles = ProfileSet("fusion-h", 4, {
        "two manners": ArtistProfile("two manners", e[[0, 1]], np.array([5, 5]), 10),
        "one manner": ArtistProfile("one manner", e[[0]], np.array([10]), 10),
        "elsewhere": ArtistProfile("elsewhere", e[[3]], np.array([10]), 10)})
    names, scores, best, sims = score_profiles(e[[0, 1]], profiles, temperature=0)
    by = dict(zip(names, scores))
    assert by["two manners"] == pytest.approx(1.0) and by["one manner"] == pytest.approx(0.5)
    assert by["elsewhere"] == pytest.approx(0.0)
    assert best[names.index("two manners")].tolist() == [0, 1]  # each reference its own prototype
    # the soft maximum discounts a prototype by the share of works behind it
    names, soft, _, _ = score_profiles(e[[0, 1]], profiles, temperature=0.1)
    by = dict(zip(names, soft))
    assert by["two manners"] == pytest.approx(1 + 0.1 * np.log(0.5), abs=1e-3) and by["two manners"] > by["one manner"]


def test_the_score_is_described_as_the_soft_maximum_it_is():
    from pathlib import Path

    import artlens.web
    from artlens.api.routes.artists import ArtistResult, search_artists

    for text in (ArtistResult.model_fields["score"].description, search_artists.__doc__,
                 (Path(artlens.web.__file__).parent / "static" / "app.js").read_text()):
        assert "soft maximum" in text and "best prototype similarity" not in text


def test_soft_maximum_goes_to_the_best_prototype_as_temperature_falls():
    sims = np.array([[0.9, 0.2, 0.1]])
    counts = np.array([1, 10, 10])
    assert combine_prototypes(sims, counts, 0)[0] == pytest.approx(0.9)
    assert combine_prototypes(sims, counts, 0.001)[0] == pytest.approx(0.9, abs=0.01)
    assert 0.2 < combine_prototypes(sims, counts, 0.1)[0] < 0.9
    assert combine_prototypes(sims, counts, 100)[0] == pytest.approx((0.9 + 2 + 1) / 21, abs=1e-3)


class FixedHead:
    """Stands in for a head in ranking tests: an id and no inputs."""

    def __init__(self, id="fusion-h"):
        self.id = id


def test_search_reports_matches_and_refuses_another_head():
    e = np.eye(3, dtype=np.float32)
    profiles = ProfileSet("fusion-h", 3, {n: ArtistProfile(n, e[[i]], np.array([4]), 4) for i, n in enumerate("abc")})
    result = ArtistSearch(profiles, FixedHead()).search_vectors(e[[2]], [{"kind": "image", "name": "q.png"}], k=2)
    answer = result.as_dict()
    assert [r["artist"] for r in answer["results"]] == ["c", "a"]
    assert answer["results"][0]["matches"] == [{"reference": 0, "prototype": 0, "similarity": 1.0, "prototype_works": 4}]
    with pytest.raises(ArtifactMismatchError, match="made with head fusion-h"):
        ArtistSearch(profiles, FixedHead("fusion-other"))


# -- evaluation -----------------------------------------------------------------------------------
def test_incremental_leave_one_out_equals_rebuilding_the_profile():
    x, _ = clustered(per=(9, 7, 8), spread=0.6)
    artists = ["a"] * 9 + ["b"] * 7 + ["c"] * 8
    space = ArtistSpace(np.arange(len(x)), x, artists, "test")
    queries = np.array([0, 4, 10, 20])
    config = ProfileConfig(max_prototypes=1)
    fast = profile_scores(space, queries, config)
    for j, q in enumerate(queries):
        keep = np.delete(np.arange(len(x)), q)
        rebuilt = build_profiles(x[keep], [artists[i] for i in keep], "h", config)
        names, scores, _, _ = score_profiles(x[q], rebuilt)
        assert np.allclose(fast[j], scores, atol=1e-5)
    # with several prototypes the held-out work leaves its own cluster (the others stay as they were)
    config = ProfileConfig(max_prototypes=3, works_per_prototype=3, min_prototype_works=2)
    full = build_profiles(x, artists, "h", config)
    assert len(full.profiles["a"].counts) > 1
    fast = profile_scores(space, np.array([0]), config)
    names, scores, _, _ = score_profiles(x[0], full)
    assert np.allclose(fast[0, 1:], scores[1:], atol=1e-5)  # other artists: their published profiles
    assert fast[0, 0] < scores[0]  # its own artist no longer holds the query


def test_nearest_artwork_never_counts_the_query_and_ranking_metrics():
    x = np.eye(3, dtype=np.float32)[[0, 0, 1, 2]]
    space = ArtistSpace(np.arange(4), l2_normalise(x + 1e-3), ["a", "b", "b", "c"], "test")
    scores = nearest_artwork_scores(space, np.array([0]))
    assert np.argmax(scores[0]) == 1  # its twin by artist b, not itself
    metrics = ranking(np.array([[0.9, 0.5, 0.1], [0.2, 0.3, 0.1]]), np.array([0, 0]))
    assert metrics == {"top1": 0.5, "top3": 1.0, "mrr": pytest.approx(0.75)}


# -- on the tiny collection: CLI and API ----------------------------------------------------------
def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def heads(tiny_collection, tmp_path_factory):
    """Two small heads trained on the tiny collection's styles (different seeds: different ids)."""
    from artlens.models import HeadShape
    from artlens.train.loop import TrainConfig
    from artlens.train.run import train_collection_head

    folder = tmp_path_factory.mktemp("heads")
    paths = []
    for seed in (0, 1):
        config = dataclasses.replace(TrainConfig(), epochs=3, seed=seed, head=HeadShape(hidden=(32,), dim=16))
        run = train_collection_head(tiny_collection, "style", ["content", "style"], config)
        paths.append(run.head.save(folder / f"head{seed}.pt"))
    return paths


@pytest.fixture(scope="module")
def published(tiny_collection, heads, tmp_path_factory):
    out = tmp_path_factory.mktemp("profiles") / "styles.json"
    code = main(["artists", "publish", "--collection", str(tiny_collection.root), "--artist-column", "style",
                 "--head", str(heads[0]), "--out", str(out), "-q"])
    assert code == 0
    return out


def test_profile_file_holds_no_image_path_or_per_work_vector(published, tiny_collection, heads):
    from artlens.models import load_head

    raw = published.read_bytes()
    text = raw.decode("utf-8")
    catalog = tiny_collection.catalog
    arts = catalog.get_many(catalog.ids())
    head = load_head(heads[0])
    for art in arts.values():
        for needle in (art.path, art.path.split("/")[-1], art.path.split("/")[-1].rsplit(".", 1)[0], art.md5):
            assert needle not in text
    for keys in head.split.values():
        assert not any(k in text for k in keys)
    assert not any(magic in raw for magic in (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF", b"base64"))
    data = json.loads(text)
    assert set(data) == {"kind", "schema_version", "head", "head_label", "dim", "config", "sources", "artists"}
    for artist in data["artists"]:
        assert set(artist) == {"name", "works", "counts", "prototypes", "privacy"}
    strings = re.findall(r'"((?:[^"\\]|\\.)*)"', text)
    assert max(len(s) for s in strings) < 64  # names and keys, nothing encoded
    # no prototype is (or lies next to) one work's vector, and no run of a work's numbers appears
    labels = {i: v for i, v in catalog.column("style").items()}
    space = learned_space(tiny_collection, head, labels)
    prototypes = np.concatenate([np.asarray(a["prototypes"]) for a in data["artists"]])
    assert np.max(space.vectors @ prototypes.T) < 0.999
    for vector in space.vectors:
        run = ",".join(json.dumps(round(float(v), 6)) for v in vector[:3])
        assert run not in text.replace(" ", "")


def test_cli_publish_search_and_eval_on_the_tiny_collection(published, tiny_collection, heads, tiny_folder, capsys):
    dots = tiny_folder[0] / "images" / "dots_1.png"
    rings = tiny_folder[0] / "images" / "rings_2.png"
    code, out, err = run_cli(capsys, "artists", "search", "--like", dots, "--like", rings, "--profiles", published,
                             "--head", heads[0], "-k", 3, "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert [r["name"] for r in answer["references"]] == ["dots_1.png", "rings_2.png"]
    assert sorted(r["artist"] for r in answer["results"]) == ["dots", "rings", "stripes"]
    scores = [r["score"] for r in answer["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all(len(r["matches"]) == 2 for r in answer["results"])
    code, out, err = run_cli(capsys, "artists", "search", "--like", dots, "--profiles", published, "--head", heads[0],
                             "-k", 3)
    assert code == 0 and "dots" in out
    code, out, err = run_cli(capsys, "eval", "artists", "--collection", tiny_collection.root, "--artist-column", "style",
                             "--head", heads[0], "--split", "all", "--dp-repeats", 2, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["n_queries"] == 12 and result["n_artists"] == 3
    assert {"profiles", "profiles-mean", "profiles-dp-eps8", "nearest-artwork", "nearest-artwork-vote10",
            "pretrained-profiles", "pretrained-nearest-artwork"} <= set(result["methods"])
    assert all(0 <= m["top1"] <= m["top3"] <= 1 and 0 < m["mrr"] <= 1 for m in result["methods"].values())


def test_cli_search_takes_the_files_after_like_as_further_references(published, heads, tiny_folder, capsys):
    images = tiny_folder[0] / "images"
    refs = [images / "dots_1.png", images / "rings_2.png", images / "stripes_1.png"]
    code, out, err = run_cli(capsys, "artists", "search", "--like", *refs, "--profiles", published, "--head", heads[0],
                             "-k", 3, "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert [r["name"] for r in listed["references"]] == ["dots_1.png", "rings_2.png", "stripes_1.png"]
    assert all(len(r["matches"]) == 3 for r in listed["results"])
    code, out, err = run_cli(capsys, "artists", "search", *[a for r in refs for a in ("--like", r)],
                             "--profiles", published, "--head", heads[0], "-k", 3, "--json")
    assert code == 0, err
    assert json.loads(out) == listed  # the same as repeating --like
    code, _, err = run_cli(capsys, "artists", "search", "--profiles", published, "--head", heads[0], refs[0])
    assert code == 2 and "reference images follow --like" in err and f"hint: write --like {refs[0]}" in err


def test_cli_merge(tiny_collection, heads, tmp_path, capsys):
    from artlens.models import load_head

    head = load_head(heads[0])
    space = learned_space(tiny_collection, head, dict(tiny_collection.catalog.column("style").items()))
    halves = [np.arange(len(space.ids)) % 2 == i for i in (0, 1)]  # two institutions, two works per style each
    files = [build_profiles(space.vectors[h], np.asarray(space.artists)[h].tolist(), head.id).save(tmp_path / f"{i}.json")
             for i, h in enumerate(halves)]
    out = tmp_path / "merged.json"
    code, _, err = run_cli(capsys, "artists", "merge", *files, "--out", out)
    assert code == 0, err
    merged = ProfileSet.load(out)
    assert len(merged.sources) == 2 and merged.names() == ["dots", "rings", "stripes"]
    assert all(p.works == 4 for p in merged.profiles.values())
    refused = tmp_path / "refused.json"
    code, _, err = run_cli(capsys, "artists", "merge", files[0], files[0], "--out", refused)
    assert code == 2 and f"{files[0]} is given twice" in err and "hint:" in err
    copy = tmp_path / "copy.json"
    copy.write_bytes(files[0].read_bytes())
    code, _, err = run_cli(capsys, "artists", "merge", files[0], copy, "--out", refused)
    assert code == 2 and f"{files[0]} and {copy} both hold publication" in err
    code, _, err = run_cli(capsys, "artists", "merge", out, files[1], "--out", refused)
    assert code == 2 and "both hold publication" in err and "a merged file already holds" in err
    assert not refused.exists()


@pytest.mark.parametrize("args, message", [
    (["--artist-column", "painter"], "artist column 'painter' not found"),
    (["--artist-column", "title"], "fewer than 2 works"),
    (["--artist-column", "style", "--epsilon", "-1"], "epsilon must be a positive number"),
    (["--artist-column", "style", "--works-per-prototype", "0"], "works per prototype must be a whole number of at least 1"),
    (["--artist-column", "style", "--max-prototypes", "0"], "max prototypes must be a whole number of at least 1"),
])
def test_cli_publish_bad_input_is_a_clear_error(args, message, tiny_collection, heads, tmp_path, capsys):
    out = tmp_path / "p.json"
    code, _, err = run_cli(capsys, "artists", "publish", "--collection", tiny_collection.root, "--head", heads[0],
                           "--out", out, "-q", *args)
    assert code == 2 and message in err and "hint:" in err
    assert not out.exists()


def test_cli_bad_input_for_search_and_eval(published, tiny_collection, heads, tiny_folder, capsys):
    dots = tiny_folder[0] / "images" / "dots_1.png"
    code, _, err = run_cli(capsys, "artists", "search", "--like", dots, "--profiles", published, "--head", heads[1])
    assert code == 2 and "profiles were made with head" in err and "hint:" in err
    code, _, err = run_cli(capsys, "artists", "search", "--text", "red dots", "--profiles", published, "--head", heads[0])
    assert code == 2 and "no text input" in err
    code, _, err = run_cli(capsys, "artists", "search", "--profiles", published, "--head", heads[0])
    assert code == 2 and "at least one reference" in err
    code, _, err = run_cli(capsys, "eval", "artists", "--collection", tiny_collection.root, "--artist-column", "title",
                           "--head", heads[0])
    assert code == 2 and "fewer than 2 works" in err
    code, _, err = run_cli(capsys, "eval", "artists", "--collection", tiny_collection.root, "--artist-column", "painter",
                           "--head", heads[0])
    assert code == 2 and "artist column 'painter' not found" in err
    code, _, err = run_cli(capsys, "eval", "artists", "--collection", tiny_collection.root, "--artist-column", "style",
                           "--head", heads[0], "--queries", "text")
    assert code == 2 and "cannot embed text queries" in err
    code, _, err = run_cli(capsys, "eval", "artists", "--collection", tiny_collection.root, "--artist-column", "style",
                           "--head", heads[0], "--max-prototypes", 0)
    assert code == 2 and "max prototypes must be a whole number of at least 1" in err and "hint:" in err
    code, _, err = run_cli(capsys, "eval", "artists", "--collection", tiny_collection.root, "--artist-column", "style",
                           "--head", heads[0], "--dp-repeats", 0)
    assert code == 2 and "--dp-repeats must be at least 1" in err
    code, _, err = run_cli(capsys, "artists", "merge", published, "--max-prototypes", 0, "--out", published.with_name("m"))
    assert code == 2 and "max prototypes must be at least 1" in err


def test_eval_counts_only_the_works_with_features(tiny_collection, heads, monkeypatch, capsys):
    import artlens.artists.portfolio as portfolio

    gather = portfolio.gather_features

    def without_most_dots(collection, specs, ids=None, extract=True):  # one 'dots' work keeps its features
        features = gather(collection, specs, ids, extract)
        styles = collection.catalog.column("style")
        dots = [r for r, i in enumerate(features.ids) if styles[int(i)] == "dots"]
        return features.subset(np.array([r for r in range(len(features.ids)) if r not in dots[1:]]))

    monkeypatch.setattr(portfolio, "gather_features", without_most_dots)
    code, _, err = run_cli(capsys, "eval", "artists", "--collection", tiny_collection.root, "--artist-column", "style",
                           "--head", heads[0], "--split", "all", "--dp-repeats", 1, "-q")
    assert code == 2 and "fewer than 2 works with features: 'dots'" in err and "artlens ingest" in err


def test_eval_table_keeps_method_names_apart(tiny_collection, heads, monkeypatch, capsys):
    args = ["eval", "artists", "--collection", tiny_collection.root, "--artist-column", "style", "--head", heads[0],
            "--split", "all", "--dp-repeats", 1, "-q"]
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    cells = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
    assert {"pretrained-nearest-artwork", "pretrained-nearest-artwork-vote10", "nearest-artwork-vote10"} <= set(cells)
    assert "pretrained: content" in out  # the pretrained space's mix, below the table
    assert all(len(line) <= 80 for line in out.splitlines())
    monkeypatch.setenv("COLUMNS", "40")  # narrower than the names: folded, not cut to one ellipsis
    code, out, err = run_cli(capsys, *args)
    assert code == 0 and "…" not in out


def test_api_artists_search(published, tiny_collection, heads, tiny_folder, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from artlens.api import ApiSettings, create_app

    served, served_head = tmp_path / "served" / "profiles.json", tmp_path / "served" / "head.pt"
    settings = ApiSettings(collection=tiny_collection.root, thumbnail_dir=tmp_path / "thumbs",
                           artist_profiles=served, artist_head=served_head)
    dots = (tiny_folder[0] / "images" / "dots_1.png").read_bytes()
    with TestClient(create_app(settings, collection=tiny_collection, warm_up=False)) as client:
        assert client.get("/api/artists").json()["available"] is False
        missing = client.post("/api/artists/search", files={"image": ("q.png", dots, "image/png")})
        assert missing.status_code == 501 and "artists publish" in missing.json()["hint"]
        served.parent.mkdir()
        shutil.copy(published, served)
        shutil.copy(heads[0], served_head)
        listing = client.get("/api/artists").json()
        assert listing["available"] and [a["name"] for a in listing["artists"]] == ["dots", "rings", "stripes"]
        assert listing["text"] is False
        answer = client.post("/api/artists/search", data={"k": "2"},
                             files=[("image", ("a.png", dots, "image/png")), ("image", ("b.png", dots, "image/png"))])
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["results"]) == 2 and body["references"][0] == {"kind": "image", "name": "upload 1"}
        assert all(len(r["matches"]) == 2 for r in body["results"])
        assert "path" not in answer.text
        bad = client.post("/api/artists/search", data={"text": "dots"})
        assert bad.status_code == 422 and "no text input" in bad.json()["error"]
        assert client.post("/api/artists/search", data={"k": "2"}).status_code == 422
        shutil.copy(heads[1], served_head)  # another head, once the file changes
        os.utime(served, (time.time() + 5, time.time() + 5))
        other = client.post("/api/artists/search", files={"image": ("q.png", dots, "image/png")})
        assert other.status_code == 422 and "profiles were made with head" in other.json()["error"]


def test_serve_answers_from_the_given_profiles_and_head(published, tiny_collection, heads, tiny_folder, tmp_path,
                                                        monkeypatch, capsys):
    from fastapi.testclient import TestClient

    from artlens.api import server

    monkeypatch.delenv("ARTLENS_ARTIST_PROFILES", raising=False)
    monkeypatch.delenv("ARTLENS_ARTIST_HEAD", raising=False)
    seen = {}
    monkeypatch.setattr(server, "serve_app", lambda app, host, port, on_ready, threads: seen.update(app=app))
    base = ["serve", "--collection", tiny_collection.root, "--thumbnails", tmp_path / "thumbs"]
    code, _, err = run_cli(capsys, *base, "--profiles", published, "--head", heads[0])
    assert code == 0, err
    settings = seen["app"].state.settings
    assert settings.artist_profiles == published and settings.artist_head == heads[0]
    dots = (tiny_folder[0] / "images" / "dots_1.png").read_bytes()
    with TestClient(seen["app"]) as client:
        assert client.get("/api/artists").json()["available"] is True
        answer = client.post("/api/artists/search", files={"image": ("q.png", dots, "image/png")})
        assert answer.status_code == 200, answer.text
    code, _, err = run_cli(capsys, *base, "--profiles", published, "--head", heads[1])
    assert code == 2 and "profiles were made with head" in err
    code, _, err = run_cli(capsys, *base, "--profiles", tmp_path / "none.json", "--head", heads[0])
    assert code == 2 and "no profile file at" in err and "artists publish" in err
