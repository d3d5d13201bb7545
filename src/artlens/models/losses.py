"""Training objectives of the heads as pure functions of embeddings (rows L2-normalised).

- ``ce``: cross-entropy of the head's linear classifier (AICRS), L2 regularisation via weight decay;
- ``proxy``: a proxy-based loss, normalised softmax: cross-entropy over scaled cosines to one learned
  proxy per class (the head's cosine classifier);
- ``triplet``: the DeepArt ranking loss on cosine distance with a margin (0.6 in the paper);
- ``supcon``: supervised contrastive loss (Khosla et al.), positives = relevant pairs in the batch.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

LOSSES = ("ce", "proxy", "triplet", "supcon")


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)


def cosine_triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                        margin: float = 0.6) -> torch.Tensor:
    """mean(max(0, d(a, p) - d(a, n) + margin)) with d = 1 - cosine."""
    d_ap = 1.0 - (anchor * positive).sum(dim=1)
    d_an = 1.0 - (anchor * negative).sum(dim=1)
    return F.relu(d_ap - d_an + margin).mean()


def supervised_contrastive_loss(embeddings: torch.Tensor, positives: torch.Tensor,
                                temperature: float = 0.1) -> torch.Tensor:
    """``positives`` (B, B) bool: which pairs are relevant (the diagonal is ignored). Anchors without
    a positive in the batch do not contribute."""
    n = len(embeddings)
    eye = torch.eye(n, dtype=torch.bool, device=embeddings.device)
    logits = embeddings @ embeddings.T / temperature
    logits = logits.masked_fill(eye, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = positives & ~eye
    counts = pos.sum(dim=1)
    keep = counts > 0
    if not keep.any():
        return embeddings.sum() * 0.0
    per_anchor = -(log_prob.masked_fill(~pos, 0.0)).sum(dim=1)[keep] / counts[keep]
    return per_anchor.mean()
