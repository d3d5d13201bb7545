"""Training of the AICRS text-only baseline (an LSTM over description tokens), for the benchmarks."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from artlens.models.text_lstm import LSTMTextClassifier, MiniLMTokens
from artlens.devices import cpu_threads


def train_text_lstm(tokens: MiniLMTokens, train_texts, train_y, val_texts, val_y, n_classes: int,
                    epochs: int = 40, batch_size: int = 32, lr: float = 1e-3, patience: int = 8,
                    seed: int = 0) -> tuple[LSTMTextClassifier, list[dict]]:
    """Adam + cross-entropy with early stopping on validation loss; returns the best model and the
    per-epoch history."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = LSTMTextClassifier(tokens.embeddings, n_classes)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    x_train, len_train = tokens.encode(train_texts)
    x_val, len_val = tokens.encode(val_texts)
    y_train, y_val = torch.as_tensor(train_y), torch.as_tensor(val_y)
    best, best_state, stale, history = np.inf, None, 0, []
    with torch.enable_grad(), cpu_threads(1):
        for epoch in range(1, epochs + 1):
            model.train()
            order = rng.permutation(len(y_train))
            total = 0.0
            for start in range(0, len(order), batch_size):
                rows = torch.from_numpy(order[start : start + batch_size])
                loss = nn.functional.cross_entropy(model(x_train[rows], len_train[rows]), y_train[rows])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(rows)
            val_loss, val_acc = evaluate_text_lstm(model, x_val, len_val, y_val)
            history.append({"epoch": epoch, "train_loss": total / len(order), "val_loss": val_loss, "val_acc": val_acc})
            if val_loss < best - 1e-6:
                best, best_state, stale = val_loss, {k: v.clone() for k, v in model.state_dict().items()}, 0
            else:
                stale += 1
                if stale >= patience:
                    break
    model.load_state_dict(best_state)
    model.eval()
    return model, history


@torch.no_grad()
def evaluate_text_lstm(model: LSTMTextClassifier, tokens: torch.Tensor, lengths: torch.Tensor,
                       labels: torch.Tensor) -> tuple[float, float]:
    """(cross-entropy, accuracy)."""
    model.eval()
    logits = model(tokens, lengths)
    return float(nn.functional.cross_entropy(logits, labels)), float((logits.argmax(1) == labels).float().mean())
