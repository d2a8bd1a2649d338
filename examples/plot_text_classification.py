"""
==========================================================================
Imbalanced text classification: class weights, focal loss, or both?
==========================================================================

The question this package grew from: *a 4-class text task, fine-tuned from BERT, with
``compute_class_weight("balanced")`` weights and a focal loss -- should the two be combined,
and how is it written correctly?*

This example answers it on a text set whose structure is known: four topics with
frequencies 70 / 20 / 7 / 3 %, each with its own words, drowned in shared filler words, so
that some documents carry no topic word at all and only the class prior can decide them. It
trains the same bag-of-words model four ways -- cross-entropy, cross-entropy with balanced
class weights, focal loss, focal loss with balanced class weights -- and shows what the
weights and the focusing parameter do to the **probabilities** and to the **decisions**.

The input is what a tokenizer returns: a dict with ``input_ids`` and ``attention_mask``,
which :class:`~skfocal.FocalClassifier` passes to the module as keyword arguments (integer
arrays arrive as int64, so ids stay exact). A transformer takes the place of the small module
below unchanged; see :ref:`text` for a Hugging Face model and tokenizer.
"""

# %%
# Documents with a known class structure
# --------------------------------------
# Each topic owns 25 words. A document has 12 to 30 tokens; each token is one of its
# topic's words with probability 0.08, another topic's word with probability 0.03, and
# otherwise a filler word (Zipf-distributed, shared by all topics). About one document in
# five has no word of its own topic.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    recall_score,
)
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

from skfocal import FocalClassifier

TOPICS = ["sport", "finance", "politics", "science"]
SHARES = [0.70, 0.20, 0.07, 0.03]
N_TOPIC_WORDS, N_FILLER, P_OWN, P_OTHER = 25, 300, 0.08, 0.03
rng = np.random.default_rng(0)
filler_p = 1.0 / np.arange(1, N_FILLER + 1)
filler_p /= filler_p.sum()


def make_documents(n):
    y = rng.choice(len(TOPICS), size=n, p=SHARES)
    lengths = rng.integers(12, 31, size=n)
    docs = []
    for label, length in zip(y, lengths):
        u = rng.random(length)
        other = (label + rng.integers(1, len(TOPICS), size=length)) % len(TOPICS)
        topic = np.where(u < P_OWN, label, other)
        word = rng.integers(N_TOPIC_WORDS, size=length)
        filler = rng.choice(N_FILLER, size=length, p=filler_p)
        docs.append(
            " ".join(
                f"{TOPICS[t]}{w}" if v < P_OWN + P_OTHER else f"w{f}"
                for v, t, w, f in zip(u, topic, word, filler)
            )
        )
    return docs, y


docs_train, y_train = make_documents(4000)
docs_test, y_test = make_documents(8000)
print(docs_train[0][:90], "...", TOPICS[y_train[0]])
print("training documents per class:", np.bincount(y_train))


# %%
# A tokenizer's output
# --------------------
# A word-level vocabulary from the training documents; id 0 pads, id 1 is unknown. The
# result has the shape of a Hugging Face tokenizer's ``BatchEncoding``.
vocab = {w: i + 2 for i, w in enumerate(sorted({w for d in docs_train for w in d.split()}))}
VOCAB_SIZE = len(vocab) + 2


def tokenize(docs, max_length=32):
    ids = np.zeros((len(docs), max_length), dtype=np.int64)
    for row, doc in enumerate(docs):
        tokens = [vocab.get(w, 1) for w in doc.split()][:max_length]
        ids[row, : len(tokens)] = tokens
    return {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64)}


X_train, X_test = tokenize(docs_train), tokenize(docs_test)


# %%
# The model: a bag of embeddings
# ------------------------------
# The module's ``forward`` takes the dict's keys as arguments and returns one logit per class
# (``n_outputs``, which the estimator passes to the constructor: 4 here, and 1 for a binary
# target). It could equally return ``{"logits": ...}`` like a Hugging Face model.
class BagOfWords(nn.Module):
    def __init__(self, n_outputs, vocab_size=VOCAB_SIZE, dim=32):
        super().__init__()
        self.embed = nn.EmbeddingBag(vocab_size, dim, mode="sum")
        self.out = nn.Linear(dim, n_outputs)

    def forward(self, input_ids, attention_mask):
        mask = attention_mask.to(self.out.weight.dtype)
        h = self.embed(input_ids, per_sample_weights=mask)  # the sum over real tokens
        return self.out(h / mask.sum(dim=1, keepdim=True).clamp(min=1))  # their mean


# %%
# Four ways to train it
# ---------------------
# ``class_weight="balanced"`` is scikit-learn's ``compute_class_weight("balanced")``, computed
# in ``fit`` from the training labels (and recomputed on every cross-validation fold): each
# document's loss is multiplied by its class's weight. ``alpha=`` the same weights would put
# the same factors inside the loss instead; setting *both* would multiply them twice.
common = dict(module=BagOfWords, lr=0.01, batch_size=128, max_epochs=20, random_state=0)
settings = {
    "cross-entropy": dict(loss="cross_entropy"),
    "CE + class weights": dict(loss="cross_entropy", class_weight="balanced"),
    "focal (gamma=2)": dict(loss="focal", gamma=2.0),
    "focal + class weights": dict(loss="focal", gamma=2.0, class_weight="balanced"),
}
fitted = {
    name: FocalClassifier(**common, **params).fit(X_train, y_train)
    for name, params in settings.items()
}

weights = compute_class_weight("balanced", classes=np.arange(4), y=y_train)
print("balanced class weights:", dict(zip(TOPICS, weights.round(2))))

# %%
# Decisions and probabilities
# ---------------------------
# The table gives, on 8,000 test documents, the metrics of the decisions (balanced accuracy,
# macro F1, recall per class), the log loss of the probabilities, and accuracy beside the
# mean confidence (the mean of each document's largest probability): an overconfident model
# has a confidence above its accuracy, an underconfident one below.
#
# In the figure, left: recall of each class when every document gets its most probable
# class. Right: the average predicted probability of each class over the test documents,
# against the class's true share (black marks) -- a model calibrated in the large matches
# them.
proba = {name: clf.predict_proba(X_test) for name, clf in fitted.items()}
share = np.bincount(y_test, minlength=4) / len(y_test)
print(f"{'':22s} bal.acc. macro F1 log loss accuracy confidence   recall per class")
for name, p in proba.items():
    pred = p.argmax(axis=1)
    recall = recall_score(y_test, pred, average=None)
    print(
        f"{name:22s} {balanced_accuracy_score(y_test, pred):8.3f} "
        f"{f1_score(y_test, pred, average='macro'):8.3f} {log_loss(y_test, p):8.3f} "
        f"{np.mean(pred == y_test):8.3f} {p.max(axis=1).mean():10.3f}   "
        + " ".join(f"{r:.2f}" for r in recall)
    )
print(f"{'true share':22s} " + " " * 48 + " ".join(f"{s:.2f}" for s in share))

fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
width = 0.2
x = np.arange(4)
for k, (name, p) in enumerate(proba.items()):
    pred = p.argmax(axis=1)
    axes[0].bar(x + (k - 1.5) * width, recall_score(y_test, pred, average=None), width, label=name)
    axes[1].bar(x + (k - 1.5) * width, p.mean(axis=0), width, label=name)
axes[1].scatter(x, share, marker="_", s=900, color="black", zorder=3, label="true share")
labels = [f"{t}\n({s:.0%})" for t, s in zip(TOPICS, SHARES)]
axes[0].set(xticks=x, xticklabels=labels, ylabel="recall", title="Decisions: recall per class")
axes[1].set(
    xticks=x,
    xticklabels=labels,
    ylabel="mean predicted probability",
    yscale="log",
    title="Probabilities: mean predicted probability per class",
)
axes[0].legend(fontsize=8)
axes[1].set_ylim(top=3)  # room for the legend above the bars
axes[1].legend(fontsize=8)
fig.tight_layout()

# %%
# Where the documents go
# ----------------------
# Confusion matrices normalised by the true class (each row sums to 1). The weighted models
# move documents out of the majority's column into the rare classes' columns: rare documents
# found (the diagonal grows at the bottom right) and majority documents lost to the rare
# classes (the top row leaks).
fig, axes = plt.subplots(1, 4, figsize=(14, 4.2), sharey=True)
for ax, (name, p) in zip(axes, proba.items()):
    ConfusionMatrixDisplay.from_predictions(
        y_test,
        p.argmax(axis=1),
        normalize="true",
        display_labels=TOPICS,
        xticks_rotation=45,
        values_format=".2f",
        colorbar=False,
        ax=ax,
        im_kw={"vmin": 0, "vmax": 1},
    )
    ax.set_title(name, fontsize=10)
    if ax is not axes[0]:
        ax.set_ylabel("")
fig.tight_layout()
plt.show()

# %%
# What to use when
# ----------------
# * **Class weights change the decisions.** With ``class_weight="balanced"`` the argmax
#   favours the rare classes: their recall rises, the majority's falls, and balanced
#   accuracy improves (macro F1 need not: the rare classes' precision falls too). The price
#   is in the probabilities: the model now predicts the classes as if they were about
#   equally common, so its mean probability of a rare class is well above the class's
#   share, and the log loss rises. Use weights when the argmax itself must treat the
#   classes alike (balanced accuracy, recall of the rare classes) and nothing downstream
#   reads the probabilities.
# * **The focal loss alone does not rebalance the classes.** It down-weights the documents
#   the model already gets right, whichever their class. Its decisions stay close to
#   cross-entropy's; what changes is the confidence: cross-entropy's confidence exceeds its
#   accuracy here, the focal loss's lies below it -- probabilities pulled towards the middle,
#   and slightly towards the rare classes. It is a way to train, not an imbalance correction.
# * **Both** combine the two effects: the decisions of the weighted model, with the focal
#   term's lower confidence. It is one estimator, ``FocalClassifier(loss="focal", gamma=2,
#   class_weight="balanced")``, with the weights given once (as ``class_weight`` or as
#   ``alpha``, not both). In plain PyTorch it is :class:`~skfocal.losses.FocalLoss` with
#   ``alpha=weights`` (a tensor of the four weights), on logits.
# * **When the probabilities matter** (ranking, thresholds, expected counts), train without
#   weights and move the decision instead: a threshold or per-class costs tuned on held-out
#   data (see :ref:`sphx_glr_auto_examples_plot_threshold_tuning.py`). Or tune ``gamma``,
#   ``alpha`` and ``class_weight`` with :class:`~sklearn.model_selection.GridSearchCV` on
#   the metric that matters: they are ordinary hyperparameters, and ``"balanced"`` is
#   recomputed on every fold.
