r"""``sampler``: from its constraint to the per-epoch draw, in one module.

``sampler`` only decides *which rows* make up the minibatches of an epoch; it never copies a
row of ``X`` (except for an imbalanced-learn sampler that synthesises new rows, such as SMOTE,
whose output is used as the training data). Every epoch has as many draws as there are
training rows, whatever the sampler, so ``max_epochs`` and ``n_iter_no_change`` keep their
meaning.

* ``None``: a seeded random permutation of the training rows every epoch.
* ``"oversample"``: every draw picks a class uniformly, then a row of that class uniformly
  (class-balanced minibatches in expectation).
* ``"sqrt"``: as ``"oversample"`` but class :math:`c` is picked with probability
  :math:`\propto \sqrt{n_c}` (square-root balancing: half-way, on a log scale, between the
  natural frequencies and full balance).
* an imbalanced-learn sampler (anything with ``fit_resample``): it is cloned, seeded and
  fitted on the training part; if it exposes ``sample_indices_`` the epochs cycle through
  random permutations of those indices, otherwise its resampled data is trained on.

The life of a sampler in a fit: :data:`SAMPLER_CONSTRAINT` (parameter validation),
:func:`check_sampler` (against the target kind, before training), :func:`warn_double_weighting`,
:func:`plan_sampler` (host side, part of the fit plan: fits imbalanced-learn samplers and
records what each epoch draws from), and :class:`EpochSampler` (the per-epoch draw on the
training device, built by the engine from the plan).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, StrOptions

from . import _inputs

SAMPLER_POWERS = {"oversample": 0.0, "sqrt": 0.5}
SAMPLER_CONSTRAINT = [None, StrOptions(set(SAMPLER_POWERS)), HasMethods(["fit_resample"])]


def check_sampler(sampler, kind):
    """Raise when a class-balancing sampler is asked of a target without classes to balance."""
    if isinstance(sampler, str) and not kind.balances_classes:
        raise ValueError(
            f"sampler={sampler!r} balances classes and needs a binary or multiclass "
            f"target; got a {kind.name} target."
        )


def warn_double_weighting(sampler, alpha, class_weight):
    """Warn when a balancing sampler is combined with balanced weights (balancing twice)."""
    if sampler is None:
        return
    balanced = [
        name
        for name, value in (("alpha", alpha), ("class_weight", class_weight))
        if isinstance(value, str) and value == "balanced"
    ]
    if balanced:
        settings = " and ".join(f"{name}='balanced'" for name in balanced)
        warnings.warn(
            f"sampler={sampler!r} already rebalances the classes in every minibatch; combined "
            f"with {settings} the minority classes are up-weighted twice. Use one of the two "
            "unless that is what you want.",
            UserWarning,
            stacklevel=4,
        )


def needs_only_labels(sampler):
    """Whether ``sampler`` picks its rows from ``y`` alone (so X need not be handed over).

    imbalanced-learn's ``RandomOverSampler`` (without ``shrinkage``, which would add noise
    scaled by X) and ``RandomUnderSampler`` choose rows from the labels only, but return a
    resampled copy of X. Fitting them on a one-column placeholder gives the same
    ``sample_indices_`` without that copy (2.5x the peak memory of a fit on 1M x 50 rows).
    """
    from imblearn.over_sampling import RandomOverSampler
    from imblearn.under_sampling import RandomUnderSampler

    if type(sampler) is RandomUnderSampler:
        return True
    return type(sampler) is RandomOverSampler and sampler.shrinkage is None


def check_sampler_inputs(sampler, spec):
    """Raise for an imbalanced-learn sampler that needs feature rows a dict or ids X lacks.

    A dict ``X`` has no feature rows, so only samplers that pick rows from the labels alone
    (``RandomOverSampler`` without ``shrinkage``, ``RandomUnderSampler``) apply, besides the
    built-in ``"oversample"`` and ``"sqrt"``. ``RandomOverSampler(shrinkage=...)`` adds
    noise to feature values, which is meaningless for token ids.
    """
    if spec.tabular or sampler is None or isinstance(sampler, str):
        return
    from imblearn.over_sampling import RandomOverSampler

    if spec.form == _inputs.DICT and not needs_only_labels(sampler):
        raise ValueError(
            f"sampler={sampler!r} needs the feature rows of X, which a dict X does not have; "
            "with a dict X use sampler='oversample', 'sqrt', RandomOverSampler() (without "
            "shrinkage) or RandomUnderSampler()."
        )
    if (
        spec.form == _inputs.IDS
        and type(sampler) is RandomOverSampler
        and sampler.shrinkage is not None
    ):
        raise ValueError(
            f"sampler={sampler!r} adds noise to the feature values, which is meaningless for "
            "integer ids; use shrinkage=None."
        )


def check_sampled(sampler_plan, sampler, spec):
    """Raise when a sampler synthesised feature rows (SMOTE and kin) from a dict or ids X."""
    if sampler_plan.synthesises_rows and not spec.tabular:
        raise ValueError(
            f"sampler={sampler!r} synthesises new feature rows (it has no sample_indices_), "
            "which is meaningless for integer ids or a dict X; use sampler='oversample', "
            "'sqrt', RandomOverSampler() or RandomUnderSampler(), which reuse existing rows."
        )


def fit_imblearn_sampler(sampler, X, y, seed):
    """Clone, seed and fit an imbalanced-learn sampler on the training part.

    Returns ``(indices, X_res, y_res)``: ``indices`` (an int64 ndarray into the rows given)
    when the fitted sampler exposes ``sample_indices_`` -- then ``X_res`` and ``y_res`` are
    None and no resampled copy is kept -- otherwise ``indices`` is None.
    """
    sampler = clone(sampler)
    params = sampler.get_params() if hasattr(sampler, "get_params") else {}
    if "random_state" in params and params["random_state"] is None:
        sampler.set_params(random_state=seed)
    X_res, y_res = sampler.fit_resample(X, y)
    indices = getattr(sampler, "sample_indices_", None)
    if indices is not None:
        return np.asarray(indices, dtype=np.int64), None, None
    return None, X_res, y_res


class SamplerPlan:
    """What every epoch draws from: host-side, made once per fit by :func:`plan_sampler`.

    Attributes
    ----------
    seed : int
        Seed of the epoch draws' generator.
    power : float or None
        Class-balanced draws with class probability :math:`\\propto n_c^{power}`; None
        otherwise.
    pool : ndarray of int64 or None
        Positions in the training part to cycle through (imbalanced-learn
        ``sample_indices_``).
    X_res, y_res : arrays or None
        The training data synthesised by an imbalanced-learn sampler without
        ``sample_indices_`` (e.g. SMOTE); it replaces the training part.
    """

    def __init__(self, seed, power=None, pool=None, X_res=None, y_res=None):
        self.seed = seed
        self.power, self.pool = power, pool
        self.X_res, self.y_res = X_res, y_res

    @property
    def synthesises_rows(self):
        return self.X_res is not None

    def draw_frequencies(self, y_train, n_classes):
        """Expected share of each class among one epoch's draws (``y_train``: classes)."""
        if self.power is not None:
            counts = np.bincount(y_train, minlength=n_classes).astype(np.float64)
            rates = np.where(counts > 0, counts**self.power, 0.0)
            return rates / rates.sum()
        rows = y_train if self.pool is None else y_train[self.pool]
        return np.bincount(rows, minlength=n_classes) / max(len(rows), 1)

    def epoch_sampler(self, n_rows, y_train, n_classes, device):
        """The :class:`EpochSampler` of this plan on ``device`` (freshly seeded)."""
        generator = torch.Generator(device=device)
        generator.manual_seed(self.seed)
        return EpochSampler(
            n_rows,
            generator,
            y=None if self.power is None else torch.as_tensor(y_train, device=device),
            n_classes=n_classes,
            power=self.power,
            pool=None if self.pool is None else torch.as_tensor(self.pool, device=device),
        )


def plan_sampler(sampler, X, y_labels, train_idx, seed):
    """Fit ``sampler`` where needed and return its :class:`SamplerPlan`.

    imbalanced-learn works on host arrays; without a validation split the rows are a view of
    X (``slice(None)``), so that no copy of X is made just to resample, and label-only samplers
    see a one-column placeholder (:func:`needs_only_labels`).
    """
    if sampler is None:
        return SamplerPlan(seed)
    if isinstance(sampler, str):
        return SamplerPlan(seed, power=SAMPLER_POWERS[sampler])
    rows = slice(None) if train_idx is None else train_idx
    y_rows = y_labels[rows]
    if needs_only_labels(sampler):
        X_rows = np.zeros((len(y_rows), 1), dtype=np.float32)
    else:
        X_rows = X[rows]
    if isinstance(X_rows, torch.Tensor):
        X_rows = X_rows.detach().cpu().numpy()
    try:
        indices, X_res, y_res = fit_imblearn_sampler(sampler, X_rows, y_rows, seed)
    except ValueError as exc:
        raise ValueError(_sampler_failure(sampler, y_rows, exc)) from exc
    if indices is not None:
        return SamplerPlan(seed, pool=indices)
    return SamplerPlan(seed, X_res=X_res, y_res=np.asarray(y_res))


def _sampler_failure(sampler, y_rows, exc):
    """A message for an imbalanced-learn sampler that failed on the training part."""
    labels, counts = np.unique(y_rows, return_counts=True)
    per_class = ", ".join(f"{label!r}: {count}" for label, count in zip(labels.tolist(), counts))
    message = f"sampler={sampler!r} failed on the training part (class counts {per_class}): {exc}"
    k = getattr(sampler, "k_neighbors", None)
    if isinstance(k, int):
        message += (
            f" {type(sampler).__name__} interpolates between each minority sample and its "
            f"k_neighbors={k} nearest neighbours of the same class, so every class it "
            f"oversamples needs at least {k + 1} samples in the training part; lower "
            "k_neighbors or use an index sampler (sampler='oversample')."
        )
    return message


class EpochSampler:
    """Draws the training-row positions of one epoch, on the device of its generator.

    Parameters
    ----------
    n_rows : int
        Number of training rows; every epoch has this many draws.
    generator : torch.Generator
        Seeded generator on the training device.
    y : LongTensor of shape (n_rows,), default=None
        Encoded classes of the training rows (needed for class-balanced sampling).
    n_classes : int, default=None
        Number of classes.
    power : float, default=None
        Class :math:`c` is drawn with probability :math:`\\propto n_c^{power}`; None shuffles.
    pool : LongTensor, default=None
        Positions to cycle through in random order (imbalanced-learn ``sample_indices_``).
    """

    def __init__(self, n_rows, generator, *, y=None, n_classes=None, power=None, pool=None):
        self.n_rows = n_rows
        self.generator = generator
        self.device = generator.device
        self.power = power
        self.pool = pool
        if power is not None:
            counts = torch.bincount(y, minlength=n_classes)
            self.counts = counts
            self.starts = torch.cumsum(counts, 0) - counts
            self.order = torch.argsort(y, stable=True)
            present = counts > 0
            rates = torch.where(
                present,
                counts.double().pow(power),
                torch.zeros((), dtype=torch.float64, device=counts.device),
            )
            self.class_prob = rates / rates.sum()

    def __call__(self):
        g = self.generator
        if self.power is not None:
            # in place, freeing each temporary once used: the draw is n_rows long, and its
            # buffers count towards the peak memory of a fit on a large X
            cls = torch.multinomial(self.class_prob, self.n_rows, replacement=True, generator=g)
            count = self.counts[cls]
            u = torch.rand(self.n_rows, generator=g, device=self.device, dtype=torch.float64)
            offset = u.mul_(count).long()
            del u
            torch.minimum(offset, count.sub_(1), out=offset)
            del count
            rows = self.starts[cls]
            del cls
            rows.add_(offset)
            del offset
            return self.order[rows]
        if self.pool is None:
            return torch.randperm(self.n_rows, generator=g, device=self.device)
        n_pool = len(self.pool)
        reps = -(-self.n_rows // n_pool)
        perms = [
            self.pool[torch.randperm(n_pool, generator=g, device=self.device)] for _ in range(reps)
        ]
        return torch.cat(perms)[: self.n_rows]
