r"""From a trained network's logits to the scores behind ``predict_proba`` and ``predict``.

Three layers, kept apart (see the user guide page "Probabilities and decisions"):

1. *training emphasis* -- the class emphasis :math:`w_k` a fit trained with: ``alpha``,
   ``class_weight`` (``pos_weight``) and the sampler's draw rate of each class relative to
   the data (:func:`emphasis`);
2. *the inverse link* of the loss in force at the kept epoch (its spec's
   :meth:`~skfocal._loss_specs.LossSpec.log_posterior`): the logits -> the log posterior of the
   emphasised training distribution, :math:`\log(w_k \eta_k)` up to a constant;
3. *the class prior of decisions* (``class_prior``): a shift of the log posterior by
   :math:`\log(\pi'_k / (w_k \pi_k))` (Saerens et al., 2002), where :math:`\pi` is the data's
   (sample-weighted) class prior and :math:`\pi'` the prior asked for.

:class:`Posterior` holds the result for one fit (picklable: the loss spec, its
hyperparameters and the shift); ``decision_function`` is :meth:`Posterior.decision`, and
``predict_proba`` / ``predict`` are the target kind's probabilities and labels of it.
"""

from __future__ import annotations

import numpy as np
import torch

from ._weights import label_dict_to_vector

CLASS_PRIORS = ("training", "data", "balanced")


def emphasis(kind, n_classes, alpha, class_weight, pos_weight, draw_rates):
    """Per-class emphasis of training (softmax), or ``(w_pos, w_neg)`` per label (sigmoid).

    Binary targets give a length-2 vector over ``classes`` (negative, positive).
    """
    if kind.softmax or kind.n_outputs(n_classes) == 1:  # one weight per class
        w = np.ones(n_classes)
        if alpha is not None:
            w = w * (np.array([1.0 - alpha, alpha]) if isinstance(alpha, float) else alpha)
        if class_weight is not None:
            w = w * class_weight
        if draw_rates is not None:
            w = w * draw_rates
        return w
    # multilabel: positives alpha * pos_weight, negatives 1 - alpha, per label
    a = np.broadcast_to(np.asarray(0.5 if alpha is None else alpha, dtype=float), (n_classes,))
    w_pos, w_neg = a.copy(), 1.0 - a
    if pos_weight is not None:
        w_pos = w_pos * pos_weight
    return np.stack([w_neg, w_pos])


def prior_vector(class_prior, classes, kind):
    """A user's ``class_prior`` (array-like or dict keyed by label) as a checked vector."""
    n = len(classes)
    if isinstance(class_prior, dict):
        vector = label_dict_to_vector(class_prior, classes, "class_prior", np.nan)
        missing = classes[np.isnan(vector)].tolist()
        if missing:
            raise ValueError(
                f"class_prior as a dict must give every class a prior; {missing!r} missing "
                f"from {class_prior!r}."
            )
    else:
        try:
            vector = np.asarray(class_prior, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(_prior_message(class_prior, kind, n)) from exc
        if vector.ndim != 1 or len(vector) != n:
            raise ValueError(_prior_message(class_prior, kind, n))
    upper = 1.0 if not kind.softmax and kind.n_outputs(n) != 1 else np.inf
    if not np.all(np.isfinite(vector)) or np.any(vector <= 0) or np.any(vector >= upper):
        raise ValueError(_prior_message(class_prior, kind, n))
    return vector if upper == 1.0 else vector / vector.sum()


def _prior_message(given, kind, n):
    if not kind.softmax and kind.n_outputs(n) != 1:
        what = f"{n} positive rates in (0, 1), one per label"
    else:
        what = f"{n} positive class priors (normalised to sum 1), or a dict keyed by class label"
    return (
        f"class_prior must be one of {CLASS_PRIORS} or, for this {kind.name} target, {what}; "
        f"got {given!r}."
    )


def log_shift(kind, class_prior, classes, w, data_prior):
    """The additive shift of the link's output that realises ``class_prior``.

    Softmax (and the binary pair): a per-class shift of the log posterior; multilabel: a
    per-label shift of the log-odds. Zero for ``"training"``.
    """
    if isinstance(class_prior, str) and class_prior == "training":
        return None
    sigmoid_labels = not kind.softmax and kind.n_outputs(len(classes)) != 1
    if sigmoid_labels:  # per label: log-odds; w = (w_neg, w_pos), data_prior = positive rates
        shift = -(np.log(w[1]) - np.log(w[0]))
        if isinstance(class_prior, str) and class_prior == "data":
            return shift
        shift = shift - (np.log(data_prior) - np.log1p(-data_prior))
        if isinstance(class_prior, str):  # "balanced"
            return shift
        target = prior_vector(class_prior, classes, kind)
        return shift + np.log(target) - np.log1p(-target)
    shift = -np.log(w)
    if isinstance(class_prior, str) and class_prior == "data":
        return shift
    shift = shift - np.log(data_prior)
    if isinstance(class_prior, str):  # "balanced"
        return shift
    return shift + np.log(prior_vector(class_prior, classes, kind))


class Posterior:
    """Logits -> decision scores of one fit (see the module docstring).

    Parameters
    ----------
    kind : TargetKind
    spec : LossSpec
        The loss in force at the kept epoch; its inverse link maps the logits.
    hyper : dict
        The loss's hyperparameters.
    shift : ndarray or None
        Additive shift realising ``class_prior`` (None: ``"training"``).
    emphasis : ndarray or None
        The training emphasis of this phase (see :func:`emphasis`).
    """

    def __init__(self, kind, spec, hyper, shift, emphasis=None):
        self.kind, self.spec, self.hyper = kind, spec, hyper
        self.shift = None if shift is None else np.asarray(shift, dtype=np.float64)
        self.emphasis = emphasis

    def decision(self, z):
        """Log-odds (binary: shape (N,); multilabel: per label) or normalised log posterior."""
        d = self.spec.log_posterior(self.kind, self.hyper, z)
        if self.shift is not None:
            shift = torch.as_tensor(self.shift, dtype=d.dtype, device=d.device)
            if self.kind.softmax:
                d = torch.log_softmax(d + shift, dim=-1)
            elif d.dim() == 1:  # binary: the class pair's shift, on the log-odds
                d = d + (shift[1] - shift[0])
            else:  # multilabel: per label, on the log-odds
                d = d + shift
        return d

    def proba(self, z):
        """Probabilities of the kind (module level behaviour, so nets stay picklable)."""
        return self.kind.proba(self.decision(z))
