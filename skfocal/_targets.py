r"""Target kinds: binary, multiclass and multilabel targets as objects.

A :class:`TargetKind` owns everything that depends on the kind of target: how labels are
encoded, how many logits the network has, what ``alpha``, ``class_weight`` and ``pos_weight``
mean, the class prior seen by the loss and the output bias that reproduces it, which loss
family trains it (softmax or sigmoid), the output nonlinearity, and how logits are decoded
back to labels. The rest of the package asks the kind object and never compares strings.

* :data:`BINARY` -- two classes, **one** logit :math:`z` = log-odds of ``classes_[1]``,
  sigmoid losses;
* :data:`MULTICLASS` -- :math:`C \ge 3` exclusive classes, :math:`C` logits, softmax losses
  (and two-class targets trained with a softmax: not produced by :func:`target_kind`);
* :data:`MULTILABEL` -- an :math:`L`-column 0/1 indicator matrix, one sigmoid per label.

The kinds are stateless singletons (module-level instances), so fitted estimators that hold
one pickle and deep-copy cheaply and compare by identity.

Everything runs on label-encoded targets ``y_enc``: indices into ``classes`` for binary and
multiclass targets, the ``(n_samples, n_labels)`` indicator matrix for multilabel targets.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import column_or_1d

from ._weights import (
    balanced_class_weight,
    check_nonnegative,
    label_dict_to_vector,
    label_positive_mass,
)

_ALPHA_ALLOWED = (
    "None, a float in [0, 1] (binary and multilabel targets), 'balanced', an array-like with "
    "one non-negative weight per class, or a dict keyed by class label"
)


def binary_proba(z):
    """Probabilities ``[1 - sigmoid(z), sigmoid(z)]`` of a binary logit, shape (N, 2)."""
    return torch.stack([torch.sigmoid(-z), torch.sigmoid(z)], dim=-1)


def softmax_proba(z):
    """Softmax over the last dimension."""
    return torch.softmax(z, dim=-1)


class TargetKind:
    """Base class of the three target kinds; see the module docstring.

    Attributes
    ----------
    name : str
        ``"binary"``, ``"multiclass"`` or ``"multilabel"`` (for messages and records).
    softmax : bool
        Whether the softmax losses train it (else the sigmoid losses).
    balances_classes : bool
        Whether class-balancing samplers (``"oversample"``, ``"sqrt"``) apply.
    """

    name = ""
    softmax = False
    balances_classes = True

    def __repr__(self):
        return f"<target kind {self.name}>"

    def __reduce__(self):  # singletons survive pickling as themselves
        return (kind_by_name, (self.name,))

    def __deepcopy__(self, memo):
        return self

    # -- labels ------------------------------------------------------------------------------
    def encode(self, y):
        """``(classes, y_enc)``: the sorted labels and the encoded target."""
        return np.unique(y, return_inverse=True)

    def n_outputs(self, n_classes):
        """Number of logits of the network."""
        return n_classes

    def check_classes(self, classes, y_enc, weights, what="sample_weight"):
        """Raise before training when fewer than two classes carry weight.

        ``weights`` are per-sample weights (None: all 1) and ``what`` names where they come
        from in the message (``"sample_weight"``, ``"class_weight"``, ...).
        """
        if len(classes) < 2:
            raise ValueError(
                "FocalClassifier needs samples of at least 2 classes in y, got 1 class: "
                f"{classes.tolist()!r}."
            )
        if weights is not None:
            mass = np.bincount(y_enc, weights=weights, minlength=len(classes))
            if np.count_nonzero(mass > 0) < 2:
                raise ValueError(
                    f"FocalClassifier needs at least 2 classes with non-zero total {what}, got "
                    f"only class {classes[mass > 0].tolist()!r}; a class whose weights are all 0 "
                    "is not trained on."
                )

    def stratify(self, y_enc):
        """Labels to stratify a validation split by, or None when that is impossible."""
        return y_enc if np.bincount(y_enc).min() >= 2 else None

    def y_dtype(self, dtype):
        """Torch dtype of the encoded target on the device (``dtype``: the float dtype)."""
        return dtype

    # -- weights -----------------------------------------------------------------------------
    def class_weight(self, class_weight, y_enc, classes, sample_weight):
        """Per-class weights (length ``n_classes``), or None.

        ``"balanced"`` is scikit-learn's ``n_samples / (n_classes * np.bincount(y))`` (its
        ``sample_weight``-weighted form when ``sample_weight`` is given); a dict maps labels to
        weights (missing labels get 1).
        """
        if class_weight is None:
            return None
        if isinstance(class_weight, dict):
            vector = label_dict_to_vector(class_weight, classes, "class_weight", 1.0)
            return check_nonnegative(vector, "class_weight", class_weight)
        if hasattr(class_weight, "weights"):  # ClassBalanced(beta)
            counts = np.bincount(y_enc, weights=sample_weight, minlength=len(classes))
            return class_weight.weights(counts)
        return balanced_class_weight(y_enc, len(classes), sample_weight)

    def pos_weight(self, class_weight, y_enc, sample_weight):
        """Per-label ``pos_weight`` of the sigmoid loss (multilabel only), or None."""
        return None

    def sample_weights(self, y_enc, sample_weight, class_weight_vector):
        """``sample_weight * class_weight[y]``, or None when every weight would be 1."""
        if sample_weight is None and class_weight_vector is None:
            return None
        weights = np.ones(len(y_enc)) if sample_weight is None else np.asarray(sample_weight, float)
        if class_weight_vector is not None:
            weights = weights * class_weight_vector[y_enc]
        return weights

    def alpha(self, alpha, y_enc, classes, sample_weight):
        """The ``alpha`` handed to the loss (see :meth:`_alpha_vector` and subclasses)."""
        raise NotImplementedError

    def _alpha_vector(self, alpha, classes):
        """A dict or array-like ``alpha`` as one non-negative weight per class."""
        if isinstance(alpha, dict):
            vector = label_dict_to_vector(alpha, classes, "alpha", 1.0)
        else:
            try:
                vector = np.asarray(alpha, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"alpha must be {_ALPHA_ALLOWED}, got {alpha!r}.") from exc
            if vector.ndim != 1 or len(vector) != len(classes):
                raise ValueError(
                    f"alpha must have one entry per {self._unit}: expected length "
                    f"{len(classes)} ({self._units} {classes.tolist()!r}), got {alpha!r}."
                )
        return check_nonnegative(vector, "alpha", alpha)

    _unit, _units = "class", "classes"  # what alpha has one entry per

    # -- the class prior and the output bias -------------------------------------------------
    def class_prior(self, draw_frequencies, y_train, w_train, n_classes):
        """Class frequencies the loss sees: sampler draw rates times mean weight per class."""
        counts = np.bincount(y_train, minlength=n_classes)
        if w_train is None:
            mean_w = np.ones(n_classes)
        else:
            mean_w = np.bincount(y_train, weights=w_train, minlength=n_classes) / np.maximum(
                counts, 1
            )
        prior = draw_frequencies * mean_w
        return prior / prior.sum()

    def prior_logits(self, prior):
        """Output bias that makes a constant model predict ``prior`` (softmax: centred log)."""
        log_prior = torch.log(_clip_prior(prior))
        return log_prior - log_prior.mean()

    # -- outputs -----------------------------------------------------------------------------
    def squeeze(self, out):
        """The module's output in the loss's shape (binary: ``(N, 1)`` -> ``(N,)``)."""
        return out

    def per_sample(self, loss):
        """Per-element losses -> one loss per sample."""
        return loss

    def proba(self, z):
        """Logits -> probabilities (a module-level function, so nets stay picklable)."""
        return softmax_proba(z)

    def labels(self, z, classes):
        """Logits (tensor or ndarray) -> labels; tensors stay on their device when numeric."""
        if isinstance(z, torch.Tensor):
            idx = self._decode_tensor(z)
            if classes.dtype.kind in "iufb":
                return torch.as_tensor(classes, device=z.device)[idx]
            return classes[idx.cpu().numpy()]
        return classes[self._decode_array(z)]

    def _decode_tensor(self, z):
        return z.argmax(dim=1)

    def _decode_array(self, z):
        return z.argmax(axis=1)


class _Binary(TargetKind):
    name = "binary"

    def n_outputs(self, n_classes):
        return 1

    def alpha(self, alpha, y_enc, classes, sample_weight):
        """None or a float: the weight of ``classes[1]`` (the negatives get ``1 - alpha``).

        ``"balanced"`` is the negative-class frequency :math:`n_0 / n`; a length-2 array or a
        dict giving :math:`(a_0, a_1)` becomes :math:`a_1 / (a_0 + a_1)` (the same weighting up
        to a constant factor).
        """
        if alpha is None:
            return None
        if _is_real(alpha):
            return float(alpha)
        if isinstance(alpha, str):  # "balanced": the constraint table allows no other string
            weights = balanced_class_weight(y_enc, len(classes), sample_weight)
            return float(weights[1] / (weights[0] + weights[1]))
        vector = self._alpha_vector(alpha, classes)
        total = vector.sum()
        if total <= 0:
            raise ValueError(f"alpha must not be all zeros, got {alpha!r}.")
        return float(vector[1] / total)

    def prior_logits(self, prior):
        # b = log(pi_1 / pi_0) for the positive-class probability pi_1
        prior = _clip_prior(prior)
        return torch.log(prior[1:] / prior[:1])

    def squeeze(self, out):
        if out.dim() == 2 and out.shape[1] == 1:
            return out.squeeze(1)
        return out

    def proba(self, z):
        return binary_proba(z)

    def _decode_tensor(self, z):
        return (z > 0).long()

    def _decode_array(self, z):
        return (z > 0).astype(np.intp)


class _Multiclass(TargetKind):
    name = "multiclass"
    softmax = True

    def y_dtype(self, dtype):
        return torch.long

    def alpha(self, alpha, y_enc, classes, sample_weight):
        """None or one weight per class; ``"balanced"`` is :math:`n / (C\\,n_c)`."""
        if alpha is None:
            return None
        if _is_real(alpha):
            n = len(classes)
            raise ValueError(
                f"alpha={alpha!r} is a float, which is the two-class shorthand; with {n} "
                f"classes pass 'balanced', an array-like of {n} weights or a dict keyed by "
                "class label."
            )
        if isinstance(alpha, str):
            return balanced_class_weight(y_enc, len(classes), sample_weight)
        vector = self._alpha_vector(alpha, classes)
        if np.count_nonzero(vector) < 2:
            raise ValueError(
                "alpha must give at least 2 classes a positive weight (a class with alpha 0 is "
                f"not trained on), got {alpha!r}."
            )
        return vector


class _Multilabel(TargetKind):
    name = "multilabel"
    balances_classes = False
    _unit, _units = "label", "labels"

    def encode(self, y):
        return np.arange(y.shape[1]), np.asarray(y).astype(np.int64)

    def check_classes(self, classes, y_enc, weights, what="sample_weight"):
        return None

    def stratify(self, y_enc):
        return None

    def class_weight(self, class_weight, y_enc, classes, sample_weight):
        """None: ``"balanced"`` becomes a per-label ``pos_weight`` (:meth:`pos_weight`)."""
        if class_weight is None or isinstance(class_weight, str) and class_weight == "balanced":
            return None
        raise ValueError(
            "class_weight for a multilabel target must be None or 'balanced', "
            f"got {class_weight!r}."
        )

    def pos_weight(self, class_weight, y_enc, sample_weight):
        """``pos_weight`` per label for ``"balanced"``: weighted ``n_neg / n_pos``.

        The ratio of scikit-learn's balanced weights of the two values of each label, in the
        convention of :class:`torch.nn.BCEWithLogitsLoss`. Labels without positives get 1.
        """
        if class_weight != "balanced":
            return None
        pos, total = label_positive_mass(y_enc, sample_weight)
        return np.where(pos > 0, (total - pos) / np.where(pos > 0, pos, 1.0), 1.0)

    def sample_weights(self, y_enc, sample_weight, class_weight_vector):
        return sample_weight

    def alpha(self, alpha, y_enc, classes, sample_weight):
        """None, a float, or one positive weight in [0, 1] per label.

        ``"balanced"`` gives each label its negative frequency :math:`n_{0,l} / n`.
        """
        if alpha is None:
            return None
        if _is_real(alpha):
            return float(alpha)
        if isinstance(alpha, str):
            pos, total = label_positive_mass(y_enc, sample_weight)
            return 1.0 - pos / total
        if isinstance(alpha, dict):
            raise ValueError(
                "alpha for a multilabel target must be None, a float, 'balanced' or an "
                f"array-like with one value per label, got a dict {alpha!r}."
            )
        vector = self._alpha_vector(alpha, classes)
        if np.any(vector > 1):
            raise ValueError(
                "alpha for a multilabel target weights positives by alpha and negatives by "
                f"1 - alpha, so every entry must lie in [0, 1], got {alpha!r}."
            )
        return vector

    def class_prior(self, draw_frequencies, y_train, w_train, n_classes):
        """Positive rate of every label (weighted)."""
        pos, total = label_positive_mass(y_train, w_train)
        return pos / max(total, 1e-12)

    def prior_logits(self, prior):
        prior = _clip_prior(prior)
        return torch.log(prior / (1 - prior))

    def per_sample(self, loss):
        return loss.mean(dim=1)  # the mean over the labels of each sample

    def proba(self, z):
        return torch.sigmoid(z)

    def labels(self, z, classes):
        if isinstance(z, torch.Tensor):
            return (z > 0).to(torch.int64)
        return (z > 0).astype(np.int64)


BINARY = _Binary()
MULTICLASS = _Multiclass()
MULTILABEL = _Multilabel()
KINDS = {kind.name: kind for kind in (BINARY, MULTICLASS, MULTILABEL)}


def kind_by_name(name):
    """The target kind called ``name``."""
    return KINDS[name]


def target_kind(y):
    """The kind of a validated target ``y`` and ``y`` in the shape that kind encodes.

    Returns ``(kind, y)``: a 1-D label array for binary and multiclass targets, the 2-D
    indicator matrix for multilabel targets. Other targets (continuous, multiclass-multioutput)
    raise a ``ValueError`` that names what was found.
    """
    found = type_of_target(y, input_name="y")
    if found == "multilabel-indicator":
        return MULTILABEL, np.asarray(y)
    if found in KINDS:
        y = column_or_1d(y)
        return (BINARY if len(np.unique(y)) == 2 else MULTICLASS), y
    raise ValueError(
        "FocalClassifier supports binary, multiclass and multilabel-indicator targets, "
        f"got a {found!r} target."
    )


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _clip_prior(prior):
    """Frequencies as float64, clipped to [1e-6, 1 - 1e-6]: an absent class gets a finite bias."""
    return torch.as_tensor(prior, dtype=torch.float64).clamp(1e-6, 1 - 1e-6)
