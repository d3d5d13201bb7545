"""The AICRS text-only baseline: an LSTM over MiniLM token embeddings learns words that name a class."""

import torch

from artlens.models.text_lstm import LSTMTextClassifier, MiniLMTokens
from artlens.train.text_lstm import evaluate_text_lstm, train_text_lstm


def test_lstm_learns_which_words_name_the_artist():
    tokens = MiniLMTokens(max_length=16)
    words = {0: ["harbour", "boats", "sea"], 1: ["portrait", "lady", "face"]}
    texts, labels = [], []
    for i in range(24):
        label = i % 2
        texts.append(f"a painting of the {words[label][i % 3]} in {'winter' if i % 4 < 2 else 'summer'}")
        labels.append(label)
    model, history = train_text_lstm(tokens, texts[:16], labels[:16], texts[16:], labels[16:], 2, epochs=25,
                                     batch_size=8, lr=5e-3, patience=25)
    assert isinstance(model, LSTMTextClassifier) and history[-1]["epoch"] == len(history)
    x, lengths = tokens.encode(texts[16:])
    loss, acc = evaluate_text_lstm(model, x, lengths, torch.tensor(labels[16:]))
    assert acc == 1.0 and loss < history[0]["val_loss"]
