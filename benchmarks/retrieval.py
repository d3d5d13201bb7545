"""Retrieval quality per aspect and for mixes of aspects, leave-self-out, relevance = same label.

    python benchmarks/retrieval.py wikiart_styles --label style
    python benchmarks/retrieval.py louvre_genre --label genre

Ingests the set into a collection under results/collections/ (cached between runs), extracts the
content, colour and every candidate style extractor, and reports mAP, P@10, P@60, nDCG@60.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _common import RESULTS, dataset, print_table, write_result

from artlens.collection import Collection
from artlens.config import IndexConfig
from artlens.index import AspectIndex
from artlens.metrics import evaluate_vectors

STYLE_CANDIDATES = [f"{kind}-{layer}" for kind in ("gram", "cosine", "gramcos") for layer in ("block3", "block4", "block5")]
STYLE_CANDIDATES.append("gram-block4+block5")


def aspect_vectors(coll, extractor: str, ids: list[int], pca: int | None) -> np.ndarray:
    got_ids, raw = coll.raw_vectors(extractor, ids)
    if len(got_ids) != len(ids):
        raise SystemExit(f"{extractor}: {len(ids) - len(got_ids)} artworks lack features")
    index = AspectIndex.build("x", extractor, extractor, got_ids, raw, pca, IndexConfig(kind="flat"))
    return index.vectors(got_ids)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("--label", required=True)
    parser.add_argument("--styles", default=",".join(STYLE_CANDIDATES), help="style extractors to compare")
    parser.add_argument("--pca", type=int, default=256)
    args = parser.parse_args(argv)

    root = dataset(args.dataset)
    coll = Collection.open(RESULTS / "collections" / args.dataset, create=True)
    styles = args.styles.split(",")
    t0 = time.perf_counter()
    coll.ingest(root, root / "labels.csv", features=False)
    coll.extract(["effnet-lite0", "colour-hist", *styles])
    print(f"ingest + extraction: {time.perf_counter() - t0:.1f} s")

    labels = coll.catalog.labels(args.label)
    ids = sorted(labels)
    y = [labels[i] for i in ids]
    vecs = {"content": aspect_vectors(coll, "effnet-lite0", ids, None),
            "colour": aspect_vectors(coll, "colour-hist", ids, None)}
    rows = []

    def run(name, weights, vectors):
        t = time.perf_counter()
        r = evaluate_vectors(vectors, weights, y)
        rows.append({"config": name, **{k: r[k] for k in ("map", "p@10", "p@60", "ndcg@60", "n_queries")},
                     "seconds": round(time.perf_counter() - t, 1)})
        print_table(rows[-1:], list(rows[-1]))
        sys.stdout.flush()

    run("content effnet-lite0 (raw 1280-d)", {"content": 1.0}, vecs)
    vecs["content"] = aspect_vectors(coll, "effnet-lite0", ids, args.pca)
    run(f"content effnet-lite0 pca{args.pca}", {"content": 1.0}, vecs)
    run("colour colour-hist", {"colour": 1.0}, vecs)
    best_style, best_map = None, -1.0
    for style in styles:
        vecs["style"] = aspect_vectors(coll, style, ids, args.pca)
        run(f"style {style} pca{args.pca}", {"style": 1.0}, vecs)
        if rows[-1]["map"] > best_map:
            best_style, best_map, best_vec = style, rows[-1]["map"], vecs["style"]
    vecs["style"] = best_vec
    mixes = [(0.5, 0.5, 0.0), (0.25, 0.75, 0.0), (0.5, 0.4, 0.1), (0.35, 0.55, 0.1), (0.25, 0.65, 0.1),
             (0.2, 0.6, 0.2)]
    for wc, ws, wk in mixes:
        run(f"mix content={wc} {best_style}={ws} colour={wk}", {"content": wc, "style": ws, "colour": wk}, vecs)
    print()
    print_table(rows, ["config", "map", "p@10", "p@60", "ndcg@60", "n_queries"])
    best = max(rows, key=lambda r: r["map"])
    print(f"\nbest: {best['config']} (mAP {best['map']:.4f}); best style extractor: {best_style}")
    write_result(f"retrieval_{args.dataset}", {"dataset": args.dataset, "label": args.label, "rows": rows,
                                                "best": best, "best_style": best_style})
    return 0


if __name__ == "__main__":
    sys.exit(main())
