"""The AICRS text-only baseline: an LSTM over the token embeddings of an artwork's description,
with a linear classifier on its last hidden state. Token ids and (frozen) embeddings come from the
bundled MiniLM sentence encoder, so the baseline needs no download."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from artlens.features import create_extractor


class LSTMTextClassifier(nn.Module):
    def __init__(self, embeddings: torch.Tensor, n_classes: int, hidden: int = 64, freeze: bool = True):
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(embeddings, freeze=freeze, padding_idx=0)
        self.lstm = nn.LSTM(embeddings.shape[1], hidden, batch_first=True, bidirectional=True)
        self.classifier = nn.Linear(2 * hidden, n_classes)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(tokens), lengths.clamp(min=1).cpu(),
                                                   batch_first=True, enforce_sorted=False)
        _, (hidden, _) = self.lstm(packed)
        return self.classifier(torch.cat([hidden[0], hidden[1]], dim=1))


class MiniLMTokens:
    """Token ids and the token-embedding table of the bundled MiniLM encoder."""

    def __init__(self, max_length: int = 128):
        model = create_extractor("minilm").model
        self.tokenizer = model.tokenizer
        self.embeddings = model[0].auto_model.embeddings.word_embeddings.weight.detach().clone()
        self.max_length = max_length

    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) padded token ids and (B,) lengths."""
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt")
        return batch["input_ids"], batch["attention_mask"].sum(dim=1)
