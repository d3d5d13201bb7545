"""`search --fast` shortlists through the learned aspect's codes when the collection has a head."""

import shutil

from artlens.collection import Collection
from artlens.search.engine import SearchEngine
from artlens.train.config import TrainConfig
from artlens.train.run import train_learned_aspect


def test_fast_search_also_shortlists_through_the_learned_codes(tiny_collection, tmp_path):
    root = tmp_path / "c"
    shutil.copytree(tiny_collection.root, root, ignore=shutil.ignore_patterns("heads", "learned"))
    coll = Collection.open(root)
    with coll.writing():
        train_learned_aspect(coll, "style", ["content", "style"], TrainConfig(epochs=2), compare_random=False)
    engine = SearchEngine(Collection.open(root))
    asked = []
    fast_index = engine.collection.fast_index
    engine.collection.fast_index = lambda aspect, *a, **kw: asked.append(aspect) or fast_index(aspect, *a, **kw)
    fast = engine.search(artwork_id=1, k=3, weights={"content": 1.0}, fast=True)
    assert asked == ["content", "learned"]
    exact = engine.search(artwork_id=1, k=3, weights={"content": 1.0})
    assert [h.id for h in fast.hits] == [h.id for h in exact.hits]  # the mix is still exact: same top 3
    assert list(fast.weights) == ["content"]
