"""Training of heads over cached features, in plain PyTorch (``federated`` wraps this, never the reverse)."""

from artlens.train.config import DEFAULT_LOSS, TrainConfig
from artlens.train.loop import (
    History,
    evaluate_head,
    fit_classifier,
    fit_local_epochs,
    make_optimizer,
    train_head,
)
from artlens.train.split import SPLITS, collection_split, split_ids, stratified_split

__all__ = ["DEFAULT_LOSS", "History", "SPLITS", "TrainConfig", "collection_split", "evaluate_head", "fit_classifier",
           "fit_local_epochs", "make_optimizer", "split_ids", "stratified_split", "train_head"]
