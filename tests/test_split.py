"""Grouped splits: look-alike groups (a column, or clusters of pretrained features) stay whole in one
of train / val / test, so that validation and test approximate artists a head never saw."""

import numpy as np
import pytest

from artlens.errors import ArtlensError
from artlens.train import split as split_module
from artlens.train.split import collection_split, feature_groups, grouped_split


def grouped_items(n_groups=60, per_group=5, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_groups), per_group)
    labels = rng.integers(0, classes, n_groups)[groups]  # an artist paints in one style
    keys = [f"{i:032x}" for i in rng.permutation(len(groups))]
    return keys, [f"class {c}" for c in labels], [f"artist {g}" for g in groups]


def test_grouped_split_keeps_every_group_on_one_side_and_every_class_in_every_split():
    keys, labels, groups = grouped_items()
    split = grouped_split(keys, labels, groups, seed=1)
    for g in set(groups):
        assert len({s for s, gg in zip(split, groups) if gg == g}) == 1, g
    for cls in set(labels):
        assert {s for s, c in zip(split, labels) if c == cls} == {"train", "val", "test"}
    share = {name: float(np.mean(split == name)) for name in ("train", "val", "test")}
    assert 0.55 < share["train"] < 0.85 and 0.05 < share["val"] < 0.3 and 0.05 < share["test"] < 0.3
    assert split.tolist() == grouped_split(keys, labels, groups, seed=1).tolist()
    assert split.tolist() != grouped_split(keys, labels, groups, seed=2).tolist()
    order = np.random.default_rng(5).permutation(len(keys))  # the same items in another order: the same split
    again = grouped_split([keys[i] for i in order], [labels[i] for i in order], [groups[i] for i in order], seed=1)
    assert again.tolist() == split[order].tolist()


def test_grouped_split_without_a_val_or_test_fraction_and_with_too_few_groups():
    keys, labels, groups = grouped_items()
    no_test = grouped_split(keys, labels, groups, (0.85, 0.15, 0.0))
    assert "test" not in set(no_test) and "val" in set(no_test)
    with pytest.raises(ArtlensError, match="too few groups") as err:
        grouped_split(keys[:10], ["a"] * 10, ["g1"] * 5 + ["g2"] * 5)
    assert "--split random" in err.value.hint


def test_feature_clusters_keep_near_duplicates_together():
    rng = np.random.default_rng(0)
    base_content, base_style = rng.normal(size=(30, 48)), rng.normal(size=(30, 24))
    copies = np.repeat(np.arange(30), 4)  # each work and three near-duplicates (a re-scan, a crop, ...)
    content = base_content[copies] + 0.02 * rng.normal(size=(120, 48))
    style = 5.0 * (base_style[copies] + 0.02 * rng.normal(size=(120, 24)))  # scale does not matter
    clusters = feature_groups([content, style], 30, seed=0)
    for work in range(30):
        assert len(set(clusters[copies == work].tolist())) == 1
    assert len(set(clusters.tolist())) >= 25
    labels = [f"class {w % 3}" for w in copies]
    split = grouped_split([f"{i:04d}" for i in range(120)], labels, clusters, seed=0)
    for work in range(30):  # so a split never puts a work on one side and its copy on the other
        assert len(set(split[copies == work].tolist())) == 1


def test_collection_split_grouped_by_clusters_or_a_column(tiny_collection):
    random = collection_split(tiny_collection, "style", seed=0)
    grouped = collection_split(tiny_collection, "style", seed=0, kind="grouped")
    assert sorted(grouped) == sorted(random) and set(grouped.values()) == {"train", "val", "test"}
    assert grouped == collection_split(tiny_collection, "style", seed=0, kind="grouped")
    artists = tiny_collection.catalog.column("artist")  # two artists: too few groups for three splits
    assert len(set(artists.values())) == 2
    with pytest.raises(ArtlensError, match="too few groups"):
        collection_split(tiny_collection, "style", seed=0, kind="grouped", group_by="artist")
    with pytest.raises(ArtlensError, match="unknown split kind"):
        collection_split(tiny_collection, "style", kind="by-date")


def test_training_records_its_grouped_split_and_reports_the_random_one(tiny_collection):
    from artlens.train.config import TrainConfig
    from artlens.train.run import random_split_check, train_collection_head

    config = TrainConfig(epochs=2)
    run = train_collection_head(tiny_collection, "style", ["content", "style"], config)
    assert run.split["kind"] == "grouped" and "clusters" in run.split["by"]
    assert run.head.info["split"] == run.split and set(run.pretrained) == {s.extractor for s in run.head.config.inputs}
    assert sorted(sum(run.head.split.values(), [])) == sorted(tiny_collection.catalog.md5s().values())
    grouped = collection_split(tiny_collection, "style", seed=0, kind="grouped")
    md5s = tiny_collection.catalog.md5s()
    assert set(run.head.split["test"]) == {md5s[i] for i, s in grouped.items() if s == "test"}
    summary = run.summary()
    assert {"split", "pretrained", "test"} <= set(summary)
    check = random_split_check(tiny_collection, "style", ["content", "style"], config)
    assert set(check) == {"test", "pretrained", "counts", "best_epoch"} and 0.0 <= check["test"]["map"] <= 1.0
    assert random_split_check(tiny_collection, "style", ["content", "style"], TrainConfig(split="random")) is None


def test_federated_training_holds_out_the_grouped_split_of_artlens_train(tmp_path):
    from feature_collections import make_feature_collection

    from artlens.federated.config import FederatedConfig
    from artlens.federated.head import input_specs
    from artlens.federated.heldout import HeldOut
    from artlens.federated.institution import InstitutionSource, load_institution
    from artlens.federated.simulation import plan_partition
    from artlens.models import HeadShape
    from artlens.train.config import TrainConfig
    from artlens.train.split import config_split

    coll = make_feature_collection(tmp_path / "c", per_class=30, extractors=("colour-hist",))
    config = FederatedConfig(features=("colour-hist",))
    split = config_split(coll, "style", config.training)
    assert split == config_split(coll, "style", TrainConfig())  # the central default: grouped
    assert split != collection_split(coll, "style", seed=0)  # not the random one
    md5s = coll.catalog.md5s()
    test = {md5s[i] for i, s in split.items() if s == "test"}
    part = plan_partition(coll, config, "style")
    dealt = {k for keys in part.institutions.values() for k in keys}
    assert dealt == {md5s[i] for i in split} - test  # no institution holds a test artwork
    specs = input_specs(("colour-hist",), HeadShape())
    heldout = HeldOut.from_collection(str(coll.root), specs, "style", "test", training=config.training)
    assert set(heldout.features.keys) == test
    files = part.write_institution_files(tmp_path / "keys")
    data = load_institution(InstitutionSource("cubism", str(coll.root), str(files["cubism"])), specs, "style",
                            training=config.training)
    by_key = {md5s[i]: s for i, s in split.items()}
    assert {by_key[k] for k in data.train.keys} == {"train"} and {by_key[k] for k in data.val.keys} == {"val"}


def test_a_grouped_split_too_coarse_for_three_splits_falls_back_to_random_only_when_asked(tiny_collection):
    from artlens.train.config import TrainConfig
    from artlens.train.split import config_split

    config = TrainConfig(group_by="artist")  # two artists: too few groups
    with pytest.raises(ArtlensError, match="too few groups"):
        config_split(tiny_collection, "style", config)
    assert config_split(tiny_collection, "style", config, fall_back=True) == collection_split(tiny_collection, "style")


def test_feature_clusters_are_computed_once_and_kept_in_the_user_cache(tiny_collection, tmp_path, monkeypatch):
    monkeypatch.setenv("ARTLENS_CACHE", str(tmp_path / "cache"))
    first = collection_split(tiny_collection, "style", seed=0, kind="grouped")
    kept = list((tmp_path / "cache" / "split-groups").glob("*.npz"))
    assert len(kept) == 1

    def clustering_again(*args, **kwargs):
        raise AssertionError("the kept clusters should have been used")

    monkeypatch.setattr(split_module, "feature_groups", clustering_again)
    assert collection_split(tiny_collection, "style", seed=0, kind="grouped") == first
    with pytest.raises(AssertionError):  # another seed is another clustering
        collection_split(tiny_collection, "style", seed=1, kind="grouped")
