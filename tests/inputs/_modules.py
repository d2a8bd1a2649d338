"""Small modules and token-id data shared by the input-form tests."""

import numpy as np
import torch
from torch import nn

VOCAB = 40


# -- modules --------------------------------------------------------------------------------------
class Bag(nn.Module):
    """Bag of embeddings of ``input_ids`` (masked by ``attention_mask``) -> logits."""

    def __init__(self, n_outputs, vocab=VOCAB, dim=8):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.out = nn.Linear(dim, n_outputs)

    def forward(self, input_ids, attention_mask=None):
        assert input_ids.dtype == torch.int64
        h = self.emb(input_ids)
        if attention_mask is not None:
            h = h * attention_mask.unsqueeze(-1).to(h.dtype)
        return self.out(h.mean(dim=1))


class MappingBag(Bag):
    """Returns ``{"logits": ...}`` like a Hugging Face model."""

    def forward(self, input_ids, attention_mask=None):
        return {"logits": super().forward(input_ids, attention_mask)}


class IdRecorder(nn.Module):
    """Asserts int64 ids and records the largest id seen (exact, as a Python int)."""

    def __init__(self, n_outputs):
        super().__init__()
        self.emb = nn.Embedding(97, 4)
        self.out = nn.Linear(4, n_outputs)
        self.max_id = -1

    def forward(self, X):
        assert X.dtype == torch.int64, X.dtype
        self.max_id = max(self.max_id, int(X.max()))
        return self.out(self.emb(X % 97).mean(dim=1))


class Features(nn.Module):
    """A float module whose forward takes ``x`` (positionally or by keyword), with dropout."""

    def __init__(self, n_outputs, n_in=5):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, 8), nn.ReLU(), nn.Dropout(0.3))
        self.out = nn.Linear(8, n_outputs)

    def forward(self, x):
        return self.out(self.net(x))


class Kwargs(nn.Module):
    def __init__(self, n_outputs):
        super().__init__()
        self.out = nn.Linear(1, n_outputs)

    def forward(self, **kwargs):
        return self.out(kwargs["input_ids"].float().mean(dim=1, keepdim=True))


def _text_ids(seed, n=160, length=10, weights=(0.6, 0.25, 0.15)):
    """Token ids whose class shows in a class-specific word block (ids 1..39, 0 = padding)."""
    y = seed.choice(len(weights), size=n, p=weights)
    noise = seed.integers(10, VOCAB, size=(n, length))
    topical = 1 + 3 * y[:, None] + seed.integers(0, 3, size=(n, length))
    ids = np.where(seed.random((n, length)) < 0.4, topical, noise)
    ids[:, -2:] = np.where(seed.random((n, 2)) < 0.5, 0, ids[:, -2:])  # some padding
    return ids.astype(np.int64), (ids > 0).astype(np.int64), y
