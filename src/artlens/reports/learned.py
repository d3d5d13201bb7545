"""Learned stages of the evaluation report: heads trained on the report's split (cross-entropy and
triplet for the retrieval table; image-only and fused for the AICRS table), the text-only LSTM
baseline, and federated FedAvg / FedStyle runs, each scored on the same held-out test split."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from artlens.federated.config import FederatedConfig, ServerSettings
from artlens.metrics import cross_entropy, leave_self_out_map
from artlens.models.text_lstm import MiniLMTokens
from artlens.progress import QUIET, Reporter
from artlens.settings import with_changes
from artlens.train.config import TrainConfig
from artlens.train.run import train_collection_head
from artlens.train.split import config_split
from artlens.train.text_lstm import evaluate_text_lstm, train_text_lstm


@dataclass
class TrainedHead:
    """A head trained by the report, its test-split embeddings and scores."""

    name: str
    head: object
    ids: np.ndarray
    vectors: np.ndarray
    scores: dict
    history: list[dict]


def report_split(collection, label: str, seed: int, kind: str | None = None) -> dict[int, str]:
    """{artwork id: split} of the report: the split its heads train on (``TrainConfig``'s, grouped by
    default; ``kind`` overrides it)."""
    return config_split(collection, label, TrainConfig(seed=seed), kind)


def test_ids(collection, label: str, seed: int) -> list[int]:
    """The ids of the report's held-out test split."""
    return sorted(i for i, s in report_split(collection, label, seed).items() if s == "test")


def split_row(info: dict, name: str) -> dict:
    """One row of the report's split comparison from a head's ``info`` (test scores beside the best
    pretrained input on the same split)."""
    pretrained = info.get("pretrained") or {}
    best = max(pretrained, key=pretrained.get) if pretrained else None
    test = info.get("test") or {}
    return {"model": name, "split": info.get("split", {}).get("kind"), "by": info.get("split", {}).get("by"),
            "map": test.get("map"), "top1": test.get("top1"), "n_test": test.get("n"), "best_pretrained": best,
            "best_pretrained_map": pretrained.get(best) if best else None,
            "x_best": test["map"] / pretrained[best] if best and pretrained[best] and test.get("map") is not None
            else None}


def split_comparison(collection, label: str, trained: TrainedHead, epochs: int, seed: int,
                     reporter: Reporter = QUIET) -> list[dict]:
    """The report's head on its (grouped) split and the same training on a random split: the grouped
    figure approximates unseen artists, the random one is what a random split overstates."""
    rows = [split_row(trained.head.info, trained.name)]
    if rows[0]["split"] == "grouped":
        config = TrainConfig(loss=trained.head.info.get("loss", "ce"), epochs=epochs, seed=seed)
        run = train_collection_head(collection, label, list(trained.scores["features"]), config, reporter,
                                    split="random")
        rows.append(split_row(run.head.info, trained.name))
    return rows


def train_scored_head(collection, label: str, features: Sequence[str], loss: str, epochs: int, seed: int,
                      reporter: Reporter = QUIET) -> TrainedHead:
    """Train a head (nothing is written to the collection) and score it on its test split: top-1,
    cross-entropy loss of its classifier, and training seconds."""
    config = TrainConfig(loss=loss, epochs=epochs, seed=seed)
    run = train_collection_head(collection, label, list(features), config, reporter)
    head = run.head
    md5s = collection.catalog.md5s()
    held = set(head.split["test"])
    labels = collection.catalog.column(label)
    ids, vectors = collection.learned_vectors(head, [i for i in sorted(labels) if md5s.get(i) in held])
    truth = np.array([head.config.classes.index(labels[int(i)]) for i in ids])
    proba = head.predict_proba(vectors)
    scores = {"accuracy": float(np.mean(proba.argmax(axis=1) == truth)), "map": leave_self_out_map(vectors, truth),
              "loss": cross_entropy(proba, truth),
              "train_s": run.history.seconds, "epochs": len(run.history.epochs), "n_test": len(ids),
              "n_train": run.counts["train"], "features": list(features), "notes": run.notes}
    return TrainedHead(f"{loss} [{'+'.join(features)}]", head, ids, vectors, scores, run.history.epochs)


def text_lstm_scores(collection, label: str, seed: int) -> dict:
    """The AICRS text-only baseline: an LSTM over description tokens, trained on train, stopped on val."""
    texts = collection.texts()
    labels = collection.catalog.column(label)
    split = report_split(collection, label, seed)
    classes = sorted(set(labels.values()))
    part = {s: [i for i, v in split.items() if v == s and i in texts] for s in ("train", "val", "test")}
    y = {s: [classes.index(labels[i]) for i in part[s]] for s in part}
    tokens = MiniLMTokens()
    start = time.perf_counter()
    model, history = train_text_lstm(tokens, [texts[i] for i in part["train"]], y["train"],
                                     [texts[i] for i in part["val"]], y["val"], len(classes), seed=seed)
    seconds = time.perf_counter() - start
    x, lengths = tokens.encode([texts[i] for i in part["test"]])
    loss, acc = evaluate_text_lstm(model, x, lengths, torch.as_tensor(y["test"]))
    return {"accuracy": acc, "loss": loss, "train_s": round(seconds, 1), "epochs": len(history),
            "n_test": len(part["test"]), "n_train": len(part["train"]),
            "curve": [{"epoch": h["epoch"], "val_acc": h["val_acc"], "val_loss": h["val_loss"]} for h in history]}


def federated_scores(collection, label: str, strategy: str, rounds: int, local_epochs: int, seed: int,
                     run_dir: Path, cpus: int) -> dict:
    """A federated simulation with one institution per label value (the report's label), on the
    collection's train + val artworks; the kept head is scored on the same test split."""
    # the simulation needs the optional Flower extra: imported here so that the rest of the report runs without it
    from artlens.federated.simulation import simulate

    # the federated PCA of wide inputs cannot keep more dimensions than the federation has artworks
    pooled = sum(1 for s in report_split(collection, label, seed).values() if s == "train")
    config = with_changes(FederatedConfig(strategy=strategy, rounds=rounds, local_epochs=local_epochs, label=label),
                          {"training__seed": seed, "training__head__reduce_dims":
                           max(2, min(FederatedConfig().training.head.reduce_dims, pooled - 1))})
    start = time.perf_counter()
    result = simulate(collection.root, ServerSettings(config, str(run_dir)), label, 0, attach=False, cpus=cpus)
    summary = result.summary
    per_round = summary["rounds"]
    kept = next((r for r in per_round if r["round"] == summary.get("kept_round")), per_round[-1] if per_round else {})
    return {"accuracy": summary.get("accuracy"), "loss": kept.get("test_loss"), "map": summary.get("map"),
            "train_s": round(time.perf_counter() - start, 1), "rounds": len(per_round),
            "kept_round": summary.get("kept_round"), "institutions": len(summary.get("institutions", {})),
            "n_test": int(kept["test_n"]) if kept.get("test_n") is not None else None,
            "local_epochs": local_epochs,
            "curve": [{"round": r["round"], "test_acc": r.get("test_acc"), "test_loss": r.get("test_loss"),
                       "test_map": r.get("test_map")} for r in per_round]}
