"""Figures the seed papers (and the reference runs docs/RESULTS.md cites) reported on their own data,
shown beside ours in the report and in docs/RESULTS.md. Keys are the report's row kinds."""

from __future__ import annotations

# DeepArt-style retrieval on WikiArt styles with the same backbone (EfficientNet-Lite0), label `style`.
RETRIEVAL = {
    "colour-hist": "mAP 0.18",
    "effnet-lite0": "mAP 0.220, P@60 0.361, nDCG@60 0.385",
    "gram": "mAP 0.239, P@60 0.403",
}
# louvre_genre, label `genre`, content features.
RETRIEVAL_LOUVRE = {"effnet-lite0": "mAP 0.67, P@60 0.81"}


def retrieval_reference(extractor: str | None) -> str:
    if not extractor:
        return ""
    if extractor.startswith("gram-"):
        return RETRIEVAL["gram"]
    return RETRIEVAL.get(extractor, "")
