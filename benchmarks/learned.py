"""Learned embeddings (issue 3) against the pretrained aspects, on a held-out test split.

    python benchmarks/learned.py wikiart_styles --label style
    python benchmarks/learned.py louvre_genre --label genre
    python benchmarks/learned.py kohlerryan_artists --label artist --aicrs --seeds 0,1,2,3,4

For the test split (the collection's ``split`` column, else stratified and seeded) it reports:
retrieval mAP / P@10 of every pretrained aspect and of each trained head (loss x feature set),
annotation top-1 / top-3 of the logistic-regression probe and of each head's classifier, and the
time to gather features, fit the input PCA and train. ``--aicrs`` adds the AICRS Table 4 layout:
image-only vs text-only (LSTM over description tokens; MiniLM + MLP) vs fused, with accuracy, test
loss and training time, averaged over ``--seeds`` (each seed is its own stratified split).

Collections live under results/collections/DATASET (ingested and extracted on first use; features
already cached are reused). Prints tables and writes results/learned_DATASET.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
from _common import RESULTS, dataset, print_table, write_result

from artlens.annotation import fit_probe
from artlens.collection import Collection
from artlens.config import IndexConfig
from artlens.features import create_extractor
from artlens.index import AspectIndex
from artlens.metrics import cross_entropy, evaluate_vectors
from artlens.reports.learned import text_lstm_scores
from artlens.devices import cpu_threads
from artlens.train.loop import TrainConfig
from artlens.train.run import resolve_inputs, train_collection_head
from artlens.train.split import config_split

# (extractor, PCA dimensions fitted on the whole collection, as its index would)
PRETRAINED = [("effnet-lite0", None), ("effnet-lite0", 256), ("gram-block3", 256), ("gram-block4", 256),
              ("gram-block5", 256), ("gram-block4+block5", 256), ("colour-hist", None), ("minilm", None)]
PROBE = ("effnet-lite0", "gram-block4")  # the probe: pretrained content + Gram features
DEFAULT_MIX = {"effnet-lite0": 0.25, "gram-block4+block5": 0.65, "colour-hist": 0.1}  # CollectionConfig.weights


def pretrained_vectors(coll, extractor: str, ids: list[int], pca: int | None = -1) -> tuple[np.ndarray, np.ndarray]:
    """(ids that have it, vectors) as an index would store them (by default PCA 256 above 2048-d)."""
    got, raw = coll.raw_vectors(extractor)
    ex = create_extractor(extractor)
    pca = (256 if ex.dim > 2048 else None) if pca == -1 else pca
    index = AspectIndex.build("x", extractor, ex.id, got, raw, pca, IndexConfig(kind="flat"))
    keep = np.array(sorted(set(ids) & set(got.tolist())), dtype=np.int64)
    return keep, index.vectors(keep)


def retrieval_row(name: str, vectors: np.ndarray, labels: list[str], **extra) -> dict:
    r = evaluate_vectors({"x": vectors}, {"x": 1.0}, labels)
    return {"model": name, "map": r["map"], "p@10": r["p@10"], "n_test": r["n_queries"], **extra}


def probe_row(coll, labels: dict[int, str], split: dict[int, str]) -> dict:
    fit_ids = [i for i, s in split.items() if s != "test"]
    test_ids = [i for i, s in split.items() if s == "test"]
    t = time.perf_counter()
    parts = {}
    for name in PROBE:
        parts[name] = {ids_key: pretrained_vectors(coll, name, ids) for ids_key, ids in (("fit", fit_ids), ("test", test_ids))}
    x = {k: np.hstack([parts[n][k][1] for n in PROBE]) for k in ("fit", "test")}
    y = {k: [labels[int(i)] for i in parts[PROBE[0]][k][0]] for k in ("fit", "test")}
    probe = fit_probe(x["fit"], np.array(y["fit"]))
    proba = probe.predict_proba(x["test"])
    truth = np.array([list(probe.classes_).index(v) for v in y["test"]])
    top = np.argsort(-proba, axis=1)[:, :3]
    return {"model": "probe " + "+".join(PROBE), "top1": float(np.mean(top[:, 0] == truth)),
            "top3": float(np.mean((top == truth[:, None]).any(axis=1))),
            "loss": cross_entropy(proba, truth),
            "seconds": round(time.perf_counter() - t, 1), "n_test": len(truth)}


def head_row(coll, label: str, features: list[str], config: TrainConfig, labels: dict[int, str]) -> dict:
    t = time.perf_counter()
    run = train_collection_head(coll, label, features, config)
    total = time.perf_counter() - t
    head = run.head
    test_keys = set(head.split["test"])
    md5s = coll.catalog.md5s()
    test_ids = [i for i in sorted(labels) if md5s.get(i) in test_keys]
    ids, vectors = coll.learned_vectors(head, test_ids)
    row = retrieval_row(f"head {config.loss} [{','.join(features)}]", vectors, [labels[int(i)] for i in ids])
    emb = vectors
    truth = np.array([head.config.classes.index(labels[int(i)]) for i in ids])
    proba = head.predict_proba(emb)
    top = np.argsort(-proba, axis=1)[:, :3]
    row.update(top1=float(np.mean(top[:, 0] == truth)), top3=float(np.mean((top == truth[:, None]).any(axis=1))),
               loss=cross_entropy(proba, truth),
               epochs=len(run.history.epochs), best_epoch=run.history.best_epoch,
               train_s=run.history.seconds, total_s=round(total, 1), n_train=run.counts["train"])
    return row


def text_lstm_row(coll, label: str, seed: int) -> dict:
    """The AICRS text-only baseline as ``artlens eval report`` scores it (its split for ``seed``)."""
    scores = text_lstm_scores(coll, label, seed)
    return {"model": "text-only: LSTM over description tokens", "top1": scores["accuracy"], "loss": scores["loss"],
            "train_s": scores["train_s"], "epochs": scores["epochs"], "n_test": scores["n_test"]}


def aicrs_table(coll, label: str, seeds: list[int], config: TrainConfig) -> list[dict]:
    """AICRS Table 4: image-only, text-only and fused models on the same splits, mean over seeds."""
    labels = coll.catalog.column(label)
    variants = [("image-only: CNN content features + classifier", ["content"]),
                ("image-only: content + style features + classifier", ["content", "style"]),
                ("text-only: MiniLM description embedding + classifier", ["text"]),
                ("fused (L-MFEA): content + style + text", ["content", "style", "text"])]
    runs: dict[str, list[dict]] = {}
    for seed in seeds:
        cfg = dataclasses.replace(config, seed=seed, loss="ce")
        for name, features in variants:
            r = head_row(coll, label, features, cfg, labels)
            runs.setdefault(name, []).append({"top1": r["top1"], "loss": r["loss"], "train_s": r["train_s"],
                                              "map": r["map"], "n_test": r["n_test"]})
            print(f"  seed {seed} {name}: acc {r['top1']:.3f} loss {r['loss']:.3f} ({r['train_s']} s)", flush=True)
        r = text_lstm_row(coll, label, seed)
        runs.setdefault(r["model"], []).append(r)
        print(f"  seed {seed} {r['model']}: acc {r['top1']:.3f} loss {r['loss']:.3f} ({r['train_s']} s)", flush=True)
    rows = []
    for name, items in runs.items():
        acc = np.array([i["top1"] for i in items])
        rows.append({"model": name, "accuracy": float(acc.mean()), "accuracy_std": float(acc.std()),
                     "loss": float(np.mean([i["loss"] for i in items])),
                     "train_s": float(np.mean([i["train_s"] for i in items])),
                     "map": float(np.mean([i["map"] for i in items])) if "map" in items[0] else None,
                     "n_test": items[0]["n_test"], "seeds": len(items)})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("--label", required=True)
    parser.add_argument("--losses", default="ce,proxy,triplet,supcon")
    parser.add_argument("--feature-sets", default="content,style,text;content,gram-block3,gram-block4,gram-block5,text",
                        help="';'-separated feature lists, each trained with every loss")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--aicrs", action="store_true", help="add the AICRS Table 4 comparison (needs text)")
    parser.add_argument("--seeds", default="0", help="seeds (splits) of the AICRS comparison")
    parser.add_argument("--split", default=TrainConfig.split, choices=["grouped", "random"],
                        help="grouped (look-alike groups whole in one split: unseen artists) or random (stratified)")
    parser.add_argument("--group-by", default=None, help="grouped split: a metadata column (default: feature clusters)")
    args = parser.parse_args(argv)

    with cpu_threads(1):  # on a shared CPU, spinning BLAS/torch threads slow every step down
        return run(args)


def run(args) -> int:
    root = dataset(args.dataset)
    coll = Collection.open(RESULTS / "collections" / args.dataset, create=True)
    feature_sets = [[f for f in fs.split(",") if f] for fs in args.feature_sets.split(";")]
    base = TrainConfig(epochs=args.epochs, split=args.split, group_by=args.group_by)
    if len(coll.catalog) == 0:
        coll.ingest(root, root / "labels.csv", features=False)
    needed = {s.extractor for fs in feature_sets for s in resolve_inputs(coll, fs, base)[0]}
    needed |= {"effnet-lite0", "gram-block4", "colour-hist"} | ({"minilm"} if coll.texts() else set())
    t = time.perf_counter()
    coll.extract(sorted(needed))
    print(f"features ready ({time.perf_counter() - t:.1f} s)")

    labels = coll.catalog.column(args.label)
    split = config_split(coll, args.label, base)
    test_ids = sorted(i for i, s in split.items() if s == "test")
    print(f"{args.dataset}: {len(labels)} labelled, test split {len(test_ids)} "
          f"({'split column' if 'split' in coll.catalog.metadata_columns() else args.split + ', seed 0'})")

    retrieval, annotation = [], []
    mix = {}
    for extractor, pca in PRETRAINED:
        if coll.cache.count(create_extractor(extractor).id) == 0:
            continue
        ids, vectors = pretrained_vectors(coll, extractor, test_ids, pca)
        if len(ids) < 2:
            continue
        if extractor in DEFAULT_MIX and (pca == 256 or extractor == "colour-hist"):
            mix[extractor] = (ids, vectors)
        name = f"pretrained {extractor}" + (f" pca{pca}" if pca else "")
        retrieval.append(retrieval_row(name, vectors, [labels[int(i)] for i in ids]))
        print_table(retrieval[-1:], ["model", "map", "p@10", "n_test"])
    best_pretrained = max(retrieval, key=lambda r: r["map"])
    if len(mix) == len(DEFAULT_MIX):  # the default search mix, for reference (not a single aspect)
        common = sorted(set.intersection(*(set(i.tolist()) for i, _ in mix.values())))
        vecs = {e: v[np.searchsorted(i, common)] for e, (i, v) in mix.items()}
        r = evaluate_vectors(vecs, DEFAULT_MIX, [labels[int(i)] for i in common])
        retrieval.append({"model": "pretrained default mix (content .25 / style 4+5 .65 / colour .1)", "map": r["map"],
                          "p@10": r["p@10"], "n_test": r["n_queries"]})
        print_table(retrieval[-1:], ["model", "map", "p@10", "n_test"])
    annotation.append(probe_row(coll, labels, split))
    print_table(annotation[-1:], ["model", "top1", "top3", "loss", "seconds"])

    for features in feature_sets:
        for loss in args.losses.split(","):
            row = head_row(coll, args.label, features, dataclasses.replace(base, loss=loss), labels)
            row["x_best_pretrained"] = row["map"] / best_pretrained["map"]
            retrieval.append(row)
            annotation.append({k: row[k] for k in ("model", "top1", "top3", "loss", "n_test")} | {"seconds": row["total_s"]})
            print_table([row], ["model", "map", "p@10", "x_best_pretrained", "top1", "top3", "epochs", "train_s", "total_s"])
            sys.stdout.flush()

    print(f"\nretrieval on the test split (best pretrained: {best_pretrained['model']}, mAP {best_pretrained['map']:.4f})")
    print_table(retrieval, ["model", "map", "p@10", "x_best_pretrained", "n_test", "epochs", "train_s", "total_s"])
    print("\nannotation on the test split")
    print_table(annotation, ["model", "top1", "top3", "loss", "n_test", "seconds"])
    payload = {"dataset": args.dataset, "label": args.label, "split": args.split, "n_labelled": len(labels), "n_test": len(test_ids),
               "config": base.as_dict(), "retrieval": retrieval, "annotation": annotation,
               "best_pretrained": best_pretrained}
    if args.aicrs:
        print("\nAICRS Table 4 layout (mean over seeds " + args.seeds + ")")
        rows = aicrs_table(coll, args.label, [int(s) for s in args.seeds.split(",")], base)
        print_table(rows, ["model", "accuracy", "accuracy_std", "loss", "train_s", "map", "n_test", "seeds"])
        payload["aicrs"] = rows
    write_result(f"learned_{args.dataset}" + ("" if args.split == "grouped" else f"_{args.split}"), payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
