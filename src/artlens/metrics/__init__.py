"""Pure metrics: functions of arrays, importing nothing of artlens but errors. Every stage may use
them; the reports (``artlens.reports``) put them into tables."""

from artlens.metrics.classification import cross_entropy, topk_accuracy
from artlens.metrics.ranking import (
    average_precision,
    batch_retrieval_metrics,
    dcg_at_k,
    leave_self_out_relevance,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
    retrieval_summary,
)
from artlens.metrics.retrieval import evaluate_vectors, leave_self_out_map

__all__ = [
    "average_precision", "batch_retrieval_metrics", "cross_entropy", "dcg_at_k", "evaluate_vectors",
    "leave_self_out_map", "leave_self_out_relevance", "ndcg_at_k", "precision_at_k", "recall_at_k",
    "reciprocal_rank", "retrieval_summary", "topk_accuracy",
]
