"""Text end to end: skorch's HuggingfaceTokenizer in front of FocalClassifier with a tiny BERT.

The tokenizer is trained from scratch and the transformer randomly initialised (no download),
as in docs/user_guide/text.rst.
"""

import pickle

import numpy as np
import pytest
import sklearn
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skfocal import FocalClassifier

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

TOPICS = [
    ["goal", "match", "team", "score"],
    ["stock", "market", "price", "bank"],
    ["vote", "party", "law", "senate"],
    ["gene", "cell", "virus", "lab"],
]
NOISE = ["the", "a", "of", "and", "today", "new", "report", "says", "people", "week"]


def make_texts(rng, n=160, weights=(0.7, 0.2, 0.07, 0.03)):
    """Sentences of noise words and a few words of their class's topic."""
    y = rng.choice(len(TOPICS), size=n, p=weights)
    texts = []
    for label in y:
        words = list(rng.choice(NOISE, size=6)) + list(rng.choice(TOPICS[label], size=2))
        rng.shuffle(words)
        texts.append(" ".join(words))
    return np.array(texts), y


def make_bert(n_outputs):
    """A two-layer BERT with a tiny hidden size, randomly initialised; one logit per output."""
    config = transformers.BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=n_outputs,
    )
    return transformers.BertForSequenceClassification(config)


def make_pipeline(**params):
    from skorch.hf import HuggingfaceTokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.trainers import WordLevelTrainer

    # a trainer instance, not trainer__special_tokens=...: skorch's get_params leaves such
    # dunder arguments out, so sklearn.clone (GridSearchCV) would drop them
    tokenizer = HuggingfaceTokenizer(
        tokenizer=tokenizers.Tokenizer(WordLevel(unk_token="[UNK]")),
        pre_tokenizer=Whitespace(),
        trainer=WordLevelTrainer(special_tokens=["[PAD]", "[UNK]"], show_progress=False),
        max_length=12,
    )
    clf = FocalClassifier(
        module=make_bert, max_epochs=3, batch_size=32, lr=1e-3, random_state=0, **params
    )
    return Pipeline([("tokenize", tokenizer), ("clf", clf)])


def test_tokenizer_pipeline_fit_grid_search_and_proba(seed):
    texts, y = make_texts(seed)
    pipe = make_pipeline(class_weight="balanced").fit(texts, y)
    encoded = pipe[0].transform(texts[:3])
    assert type(encoded).__name__ == "BatchEncoding"  # a dict of int64 tensors
    assert pipe[-1]._inputs_.keys == ("input_ids", "attention_mask")
    assert pipe[-1].net_.module_.classifier.out_features == 4
    proba = pipe.predict_proba(texts)
    assert proba.shape == (len(y), 4)
    torch.testing.assert_close(proba.sum(dim=1), torch.ones(len(y)))
    if tuple(int(part) for part in sklearn.__version__.split(".")[:2]) < (1, 7):
        pytest.skip(
            "scikit-learn 1.6's metrics refuse a torch y_pred beside a NumPy y_true ('Input "
            "arrays use different devices: cpu, cpu'), so every score of this search is NaN; "
            "1.7 takes them"
        )
    grid = GridSearchCV(
        make_pipeline(), {"clf__gamma": [0.0, 2.0], "clf__alpha": [None, "balanced"]}, cv=2
    )
    grid.fit(texts, y)
    assert len(grid.cv_results_["params"]) == 4
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    assert grid.predict_proba(texts[:5]).shape == (5, 4)


def test_batch_encoding_directly_binary_and_pickled(seed):
    texts, y = make_texts(seed, weights=(0.8, 0.2, 0.0, 0.0))
    pipe = make_pipeline(early_stopping=True, n_iter_no_change=2).fit(texts, y)
    assert pipe[-1].net_.module_.classifier.out_features == 1  # num_labels=1: one logit
    X = pipe[0].transform(texts)
    clf = pipe[-1]
    z = clf.decision_function(X)
    assert z.shape == (len(y),)
    again = pickle.loads(pickle.dumps(pipe))
    torch.testing.assert_close(again.predict_proba(texts), pipe.predict_proba(texts))
    X_np = {k: v.numpy() for k, v in X.items()}
    np.testing.assert_allclose(clf.decision_function(X_np), z.double().numpy(), rtol=1e-5)
