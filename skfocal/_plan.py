r"""The fit plan: a plain, host-side description of one fit, made before any training.

:func:`make_plan` turns the estimator's hyperparameters and the validated data into a
:class:`FitPlan`: the target kind, the classes and encoded target, the resolved ``alpha``,
``class_weight`` and ``pos_weight``, the normalised per-sample weights, the seeds, the
training and validation positions, the sampler's plan, the loss spec and its schedule, and
the class prior that initialises the output bias. Everything a fit decides is decided here,
where it can be unit-tested without training a network; an engine (:mod:`skfocal._engines`)
then trains what plans describe.

The order mirrors :meth:`imblearn.base.SamplerMixin.fit_resample`: validate, derive the
data-dependent settings, then hand over to the worker.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from numbers import Integral

import numpy as np
import torch
from sklearn.metrics import check_scoring
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_random_state

from . import _auto, _inputs
from ._early_stopping import warn_few_validation_rows
from ._loss_specs import CROSS_ENTROPY, loss_spec
from ._posterior import Posterior, emphasis, log_shift
from ._sampling import (
    check_sampled,
    check_sampler,
    check_sampler_inputs,
    plan_sampler,
    warn_double_weighting,
)
from ._scoring import check_scorer
from ._targets import target_kind

#: estimator hyperparameters that shape the network and its training run (the engine's)
TRAINING_PARAMS = (
    "module",
    "hidden_layer_sizes",
    "dropout",
    "optimizer",
    "lr",
    "weight_decay",
    "batch_size",
    "max_epochs",
    "early_stopping",
    "n_iter_no_change",
    "weight_averaging",
    "bias_init",
    "class_prior",
    "dtype",
    "verbose",
    "callbacks",
    "accelerator",
)


class FitPlan:
    """Everything one fit decided before training (see the module docstring).

    Attributes
    ----------
    kind : TargetKind
        Binary, multiclass or multilabel.
    classes : ndarray
        ``classes_`` of the fit.
    y_enc : ndarray
        Encoded target of the training data (after a row-synthesising sampler: of its output
        followed by the validation rows).
    weights : ndarray of float64 or None
        Per-sample weights (``sample_weight * class_weight[y]``) normalised to mean 1 over the
        training rows, or None when all are 1.
    alpha, class_weight, pos_weight : resolved values (see :mod:`skfocal._targets`)
    seeds : dict
        ``{"torch": ..., "split": ..., "sampler": ...}``, drawn from ``random_state``.
    train_idx, valid_idx : ndarray of int64 or None
        Sorted positions of the training and validation rows (None: all rows / none).
    y_valid, sw_valid : ndarray or None
        Original labels and sample weights of the validation rows (for a scorer).
    sampler : SamplerPlan
        What each epoch draws from.
    loss : LossSpec
        The loss; ``loss_params`` holds the hyperparameters it reads.
    schedule : list of (int, LossSpec, ndarray or None) or None
        Training phases ``(first_epoch, spec, extra class weights)`` (1-based); None trains
        with ``loss`` throughout. ``warmup_epochs`` gives ``[(1, cross_entropy, None),
        (k + 1, loss, None)]``; LDAM's ``drw_epoch`` ``[(1, loss, None), (e, loss, weights)]``.
    prior : ndarray
        Class prior seen by the loss (sampler draw rates x weights), for ``bias_init``.
    emphasis : ndarray
        Training emphasis per class (alpha x class_weight x the sampler's draw rate), or
        ``[w_neg, w_pos]`` per label (multilabel).
    data_prior : ndarray
        Sample-weighted class prior (multilabel: positive rates) of the training rows.
    posteriors : list of Posterior
        Logits -> decision scores under ``class_prior``, one per schedule phase (the loss in
        force at the kept epoch decides which one the fitted estimator uses).
    n_features, n_outputs : int
        Input width (None for a dict ``X``) and number of logits.
    inputs : InputSpec
        How ``X`` reaches the module: float features, integer ids or a dict of keyword
        arguments (:mod:`skfocal._inputs`).
    params : dict
        The estimator's training hyperparameters (:data:`TRAINING_PARAMS`), with
        ``early_stopping`` and ``max_epochs`` resolved to a bool and an int
        (:func:`skfocal._auto.resolve`): engines and the search read these, never the
        estimator's ``"auto"``.
    auto_samples : int
        The sample count that resolved ``"auto"`` (the rows given, or a search's outer count).
    scorer, scorer_name : callable and str, or None
        Early-stopping scorer and the name it is recorded under (``valid_<name>``).
    device : torch.device
        The training device (``device="auto"`` resolved, availability checked).
    dtype : torch.dtype
        The floating dtype of training.
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)

    @property
    def n_train(self):
        return len(self.y_enc) if self.train_idx is None else len(self.train_idx)

    @property
    def n_valid(self):
        return 0 if self.valid_idx is None else len(self.valid_idx)

    @property
    def train_rows(self):
        return slice(None) if self.train_idx is None else self.train_idx

    def epoch_sampler(self, device):
        """The seeded per-epoch draw of the training part on ``device`` (an EpochSampler)."""
        y_train = self.y_enc[self.train_rows] if self.kind.balances_classes else None
        return self.sampler.epoch_sampler(self.n_train, y_train, len(self.classes), device)


def split_positions(kind, y_enc, early_stopping, fraction, seed, every_class=False):
    """Sorted training and validation positions (stratified when possible), or Nones.

    With ``every_class`` (early stopping on a scorer: average precision or ROC AUC are
    undefined without positives) every class gets at least one validation row: a class the
    stratified split left out of the validation part gives it one of its training rows
    (seeded), and a class with a single row raises before training.
    """
    if not early_stopping:
        return None, None
    n = len(y_enc)
    if n < 2:
        raise ValueError(
            f"early_stopping=True holds out a validation set and needs at least 2 samples, got {n}."
        )
    rows = np.arange(n)
    stratify = kind.stratify(y_enc)
    try:
        train, valid = train_test_split(
            rows, test_size=fraction, stratify=stratify, random_state=seed
        )
    except ValueError:  # too few rows per class for a stratified split of this size
        train, valid = train_test_split(rows, test_size=fraction, random_state=seed)
    if every_class and y_enc.ndim == 1:
        train, valid = _every_class_in_valid(y_enc, train, valid, seed)
    return np.sort(train), np.sort(valid)


def _every_class_in_valid(y_enc, train, valid, seed):
    counts = np.bincount(y_enc)
    single = np.flatnonzero(counts == 1)
    if len(single):
        raise ValueError(
            f"early_stopping=True with a scoring metric needs at least 2 samples of every class "
            f"(one to train on, one to score), but class index {single.tolist()} has only 1; "
            "use scoring=None (early stopping on the validation loss) or early_stopping=False."
        )
    missing = np.setdiff1d(np.flatnonzero(counts), y_enc[valid])
    if len(missing):
        rng = np.random.default_rng(seed)
        moved = np.array([rng.choice(train[y_enc[train] == c]) for c in missing])
        train = np.setdiff1d(train, moved)
        valid = np.concatenate([valid, moved])
    return train, valid


def normalise_weights(weights, train_rows):
    """Per-sample weights divided by their mean over the training rows (mean 1 in training)."""
    if weights is None:
        return None
    weights = np.asarray(weights, dtype=np.float64)
    mean = weights[train_rows].mean()
    return weights / (mean if mean > 0 else 1.0)


def make_plan(estimator, X, y, sample_weight=None, *, auto_samples=None):
    """Validate a fit of ``estimator`` on ``X``, ``y`` and plan it: ``(plan, X)``.

    The entry of every fit (:meth:`FocalClassifier.fit`, and each member of a batched
    search): the input is validated once (:func:`~skfocal._inputs.validate_fit`, which makes
    the fit's :class:`~skfocal._inputs.InputSpec`), the target kind is found, the training
    device resolved, ``early_stopping="auto"`` and ``max_epochs="auto"`` resolved
    (:func:`skfocal._auto.resolve`), the hyperparameters the constraint table cannot express
    and the early-stopping scorer checked, and then everything the fit decides is planned
    (:class:`FitPlan`). Returns the plan and the validated ``X`` the engine trains on.
    Everything is raised here, before any training.

    ``auto_samples`` is the sample count that resolves ``"auto"``: by default the count a
    caller set for its fits (:func:`skfocal._auto.samples_for_auto`: a search's outer data),
    else the rows given here.
    """
    X, y, sample_weight, inputs = _inputs.validate_fit(estimator, X, y, sample_weight)
    kind, y = target_kind(y)
    device = _inputs.resolve_device(estimator.device, X, estimator.accelerator)
    if auto_samples is None:
        auto_samples = _auto.auto_samples()
    if auto_samples is None:
        auto_samples = len(y)
    settings = _auto.resolve(estimator, auto_samples)
    check_hyperparameters(estimator, settings, auto_samples)
    scorer, scorer_name = early_stopping_scorer(estimator, settings["early_stopping"])
    plan = _plan(estimator, X, y, kind, sample_weight, inputs, scorer, scorer_name, settings)
    plan.device, plan.dtype = device, getattr(torch, estimator.dtype)
    plan.auto_samples = auto_samples
    return plan, X


def check_hyperparameters(estimator, settings, auto_samples=None):
    """Checks the constraint table cannot express, raised before any data is planned.

    ``settings`` holds ``early_stopping`` and ``max_epochs`` as resolved for this fit
    (:func:`skfocal._auto.resolve`; ``auto_samples``: the count that resolved them). (Callbacks
    are skorch's: the skorch engine checks them, before it trains.)
    """
    sizes = estimator.hidden_layer_sizes
    if not all(isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in sizes):
        raise ValueError(
            f"hidden_layer_sizes must be a sequence of positive integers, got {sizes!r}."
        )
    optimizer = estimator.optimizer
    if estimator.weight_decay and "weight_decay" not in inspect.signature(optimizer).parameters:
        raise ValueError(
            f"weight_decay={estimator.weight_decay!r} was given but optimizer="
            f"{optimizer!r} takes no weight_decay argument; set weight_decay=0."
        )
    if estimator.scoring is not None and not settings["early_stopping"]:
        why = ""
        if isinstance(estimator.early_stopping, str):  # "auto", resolved to False
            why = (
                f" (early_stopping='auto' on {auto_samples:,} samples; it is on above "
                f"{_auto.EARLY_STOPPING_ABOVE:,})"
            )
        warnings.warn(
            f"scoring={estimator.scoring!r} has no effect with early_stopping=False{why}: "
            "scoring is the metric early stopping monitors on its held-out validation part. Set "
            "early_stopping=True to stop on it, or leave scoring=None.",
            UserWarning,
            stacklevel=4,
        )
    max_epochs = settings["max_epochs"]
    if estimator.warmup_epochs >= max_epochs and estimator.loss != "cross_entropy":
        warnings.warn(
            f"warmup_epochs={estimator.warmup_epochs} >= max_epochs={max_epochs}: "
            f"every epoch trains with cross-entropy and loss={estimator.loss!r} is never used.",
            UserWarning,
            stacklevel=4,
        )
    if estimator.accelerator is not None:
        if estimator.weight_averaging is not None:
            raise ValueError(
                f"weight_averaging={estimator.weight_averaging!r} cannot be used with an "
                "accelerator: the average is kept by skfocal's own training loop. Set "
                "weight_averaging=None, or accelerator=None."
            )
        _inputs.import_accelerate()


def early_stopping_scorer(estimator, early_stopping):
    """``(scorer, name)`` that early stopping (``early_stopping``: resolved) monitors, or
    Nones (the validation loss)."""
    if not early_stopping or estimator.scoring is None:
        return None, None
    scoring = estimator.scoring
    name = scoring if isinstance(scoring, str) else "score"
    return check_scoring(estimator, scoring=scoring), name


def _plan(est, X, y, kind, sample_weight, inputs, scorer, scorer_name, settings):
    """The :class:`FitPlan` of ``est`` on validated ``X``, ``y`` of target ``kind``
    (``settings``: its ``early_stopping`` and ``max_epochs``, resolved)."""
    spec = loss_spec(est.loss)
    hyper = spec.hyperparameters(est)
    spec.check(kind, hyper)
    check_sampler(est.sampler, kind)
    check_sampler_inputs(est.sampler, inputs)

    classes, y_enc = kind.encode(y)
    kind.check_classes(classes, y_enc, sample_weight)
    class_weight = kind.class_weight(est.class_weight, y_enc, classes, sample_weight)
    pos_weight = kind.pos_weight(est.class_weight, y_enc, sample_weight)
    alpha = kind.alpha(est.alpha, y_enc, classes, sample_weight)
    warn_double_weighting(est.sampler, est.alpha, est.class_weight)
    weights = kind.sample_weights(y_enc, sample_weight, class_weight)
    if class_weight is not None:
        kind.check_classes(classes, y_enc, weights, what=f"class_weight={est.class_weight!r}")

    rng = check_random_state(est.random_state)
    torch_seed, split_seed, sampler_seed = (int(s) for s in rng.randint(2**31 - 1, size=3))
    train_idx, valid_idx = split_positions(
        kind,
        y_enc,
        settings["early_stopping"],
        est.validation_fraction,
        split_seed,
        every_class=scorer is not None,
    )
    y_valid = None if valid_idx is None else y[valid_idx]
    sw_valid = None if valid_idx is None or sample_weight is None else sample_weight[valid_idx]
    if scorer is not None:
        check_scorer(scorer, scorer_name, kind, classes, y_valid)
        warn_few_validation_rows(scorer_name, y_enc[valid_idx], classes, est.validation_fraction)

    rows = slice(None) if train_idx is None else train_idx
    data_prior, data_freq = _data_prior(kind, y_enc[rows], sample_weight, rows, len(classes))
    counts = np.bincount(y_enc[rows], minlength=len(classes)) if y_enc.ndim == 1 else None
    hyper = spec.bind(kind, hyper, counts)  # what the loss needs of the training part

    sampler = plan_sampler(est.sampler, X, y, train_idx, sampler_seed)
    check_sampled(sampler, est.sampler, inputs)
    if sampler.synthesises_rows:
        sampler.valid_rows = np.zeros(0, dtype=np.int64) if valid_idx is None else valid_idx
        y_enc, weights, train_idx, valid_idx = _synthesised_rows(
            sampler, y_enc, classes, sample_weight, valid_idx, class_weight
        )

    train_rows = slice(None) if train_idx is None else train_idx
    w_train = None if weights is None else np.asarray(weights, dtype=np.float64)[train_rows]
    y_train = y_enc[train_rows]
    draws = None if not kind.balances_classes else sampler.draw_frequencies(y_train, len(classes))
    prior = kind.class_prior(draws, y_train, w_train, len(classes))

    schedule = _schedule(est, spec, hyper)
    draw_rates = None if draws is None else draws / np.where(data_freq > 0, data_freq, 1.0)
    w = emphasis(kind, len(classes), alpha, class_weight, pos_weight, draw_rates)
    posteriors = []  # one per phase: the emphasis (and so the shift) may change with it
    for phase, extra in [(spec, None)] if schedule is None else [(p, e) for _, p, e in schedule]:
        w_phase = w if extra is None else w * extra
        shift = _checked_shift(kind, est, classes, w_phase, data_prior)
        posteriors.append(Posterior(kind, phase, hyper if phase is spec else {}, shift, w_phase))
    return FitPlan(
        kind=kind,
        classes=classes,
        y_enc=y_enc,
        weights=normalise_weights(weights, train_rows),
        alpha=alpha,
        class_weight=class_weight,
        pos_weight=pos_weight,
        seeds={"torch": torch_seed, "split": split_seed, "sampler": sampler_seed},
        train_idx=train_idx,
        valid_idx=valid_idx,
        y_valid=y_valid,
        sw_valid=sw_valid,
        sampler=sampler,
        loss=spec,
        loss_params=hyper,
        schedule=schedule,
        prior=prior,
        n_features=_inputs.n_features(X),
        inputs=inputs,
        n_outputs=kind.n_outputs(len(classes)),
        params={name: settings.get(name, getattr(est, name)) for name in TRAINING_PARAMS},
        scorer=scorer,
        scorer_name=scorer_name,
        emphasis=w,
        data_prior=data_prior,
        posteriors=posteriors,
    )


def _data_prior(kind, y_train, sample_weight, rows, n_classes):
    """``(prior, frequencies)`` of the training rows as given: sample-weighted and plain.

    Single-label targets: class shares; multilabel: each label's positive rate.
    """
    sw = None if sample_weight is None else sample_weight[rows]
    if not kind.balances_classes:
        prior = kind.class_prior(None, y_train, sw, n_classes)
        return prior, prior
    freq = np.bincount(y_train, minlength=n_classes) / max(len(y_train), 1)
    if sw is None:
        return freq, freq
    mass = np.bincount(y_train, weights=sw, minlength=n_classes)
    return mass / mass.sum(), freq


def _schedule(est, spec, hyper):
    """Training phases ``[(first_epoch, spec, extra class weights or None)]``, or None.

    ``warmup_epochs`` trains cross-entropy first; a loss's deferred re-weighting (LDAM's
    ``drw_epoch``) adds class weights from an epoch on. The two do not combine.
    """
    deferred = spec.phases(hyper)
    warmup = est.warmup_epochs > 0 and spec is not CROSS_ENTROPY
    if warmup and deferred:
        raise ValueError(
            f"warmup_epochs={est.warmup_epochs} and the deferred re-weighting of "
            f"loss={est.loss!r} are two schedules; use one of them."
        )
    if warmup:
        return [(1, CROSS_ENTROPY, None), (est.warmup_epochs + 1, spec, None)]
    if deferred:
        return [(1, spec, None)] + [(epoch, spec, weights) for epoch, weights in deferred]
    return None


def with_class_prior(plan, estimator):
    """The plan of ``estimator``'s fit, which equals ``plan``'s but for ``class_prior``.

    ``class_prior`` acts on decisions alone, so a search plans a candidate that differs from
    a planned one only in it from that plan: the training part is ``plan``'s (the same
    objects); the decision part -- the posterior of each phase, with its log shift -- is
    ``estimator``'s, raised as :func:`make_plan` raises for a ``class_prior`` the data or the
    emphasis cannot take.
    """
    derived = copy.copy(plan)
    derived.params = {**plan.params, "class_prior": estimator.class_prior}
    derived.posteriors = [
        Posterior(
            p.kind,
            p.spec,
            p.hyper,
            _checked_shift(plan.kind, estimator, plan.classes, p.emphasis, plan.data_prior),
            p.emphasis,
        )
        for p in plan.posteriors
    ]
    return derived


def _checked_shift(kind, est, classes, w, data_prior):
    """:func:`log_shift`, refusing to undo an emphasis of zero (a class switched off)."""
    class_prior = est.class_prior
    if not (isinstance(class_prior, str) and class_prior == "training"):
        if np.any(np.asarray(w) <= 0):
            raise ValueError(
                f"class_prior={class_prior!r} undoes the training emphasis, but alpha or "
                "class_weight gives a class (or a label's positives or negatives) zero weight, "
                "which cannot be undone; use class_prior='training' or positive weights."
            )
        if np.any(np.asarray(data_prior) <= 0) or (
            not kind.balances_classes and np.any(np.asarray(data_prior) >= 1)
        ):
            raise ValueError(
                f"class_prior={class_prior!r} needs every class (every label's positives and "
                "negatives) in the training data; use class_prior='training'."
            )
    return log_shift(kind, class_prior, classes, w, data_prior)


def _synthesised_rows(sampler, y_enc, classes, sample_weight, valid_idx, class_weight):
    """Target, weights and positions once a sampler's synthesised rows replace the training part.

    The training part becomes the sampler's output (positions ``0 .. n_res - 1``), followed by
    the validation rows; the engine stitches ``X`` the same way (``sampler.X_res`` followed by
    ``X[sampler.valid_rows]``).
    """
    if sample_weight is not None:
        raise ValueError(
            "sample_weight cannot be combined with a sampler that synthesises rows (it has no "
            "sample_indices_), because the new rows have no weight."
        )
    y_res_enc = np.searchsorted(classes, sampler.y_res)
    valid = np.zeros(0, dtype=np.int64) if valid_idx is None else valid_idx
    y_all = np.concatenate([y_res_enc, y_enc[valid]])
    w_all = None if class_weight is None else class_weight[y_all]
    n_res = len(y_res_enc)
    new_valid = None if valid_idx is None else np.arange(n_res, n_res + len(valid))
    return y_all, w_all, np.arange(n_res), new_valid
