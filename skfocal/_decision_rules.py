r"""Decision rules of :class:`TunedDecisionClassifierCV`: how each is searched and applied.

Every rule turns a model's responses into labels and is chosen on out-of-fold responses only
(a list of :class:`~skfocal._decision_metrics.Fold`), through an
:class:`~skfocal._decision_metrics.Objective` that scores candidate decisions fold by fold:

:class:`BinaryThreshold`
    scikit-learn's rule for binary targets: every fold scores ``thresholds`` cut-offs evenly
    spaced between its own smallest and largest response, the fold curves are interpolated
    onto one grid over all folds, and the cut-off of the largest mean is kept (the
    :class:`~sklearn.model_selection.TunedThresholdClassifierCV` procedure, so the same folds
    give the same threshold).
:class:`ClassOffsets`
    multiclass targets: labels :math:`\operatorname{argmax}_k (s_k + b_k)` with per-class
    offsets :math:`b` added to the log posterior :math:`s` (the form of ``class_prior``'s
    shift), searched by coordinate ascent: one class at a time, every candidate offset is
    scored and the middle of the near-optimal plateau kept (:func:`plateau_middle`).
:class:`LabelThresholds`
    multilabel targets: one threshold per label, searched the same way.
:class:`ExpectedCost`
    a cost matrix :math:`C` (:math:`C_{ij}` the cost of predicting :math:`j` when the truth is
    :math:`i`): the Bayes decision :math:`\operatorname{argmin}_j \sum_i p_i C_{ij}` on the
    predicted probabilities; nothing is searched.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

#: A candidate is near-optimal when its mean score is within this fraction of the score's
#: range over the coordinate's candidates (see :func:`plateau_middle`).
PLATEAU_TOL = 0.01
#: Coordinate-ascent sweeps over all classes (or labels) at most; a sweep that changes no
#: out-of-fold decision ends the search.
MAX_SWEEPS = 10


def plateau_middle(candidates, scores, current, tol=None):
    """The middle of the near-optimal run of ``candidates`` around the best score.

    ``candidates`` are sorted; a candidate is near-optimal when its score is at least
    ``max - tol * (max - min)``. The contiguous run of near-optimal candidates that holds the
    (first) maximum is kept and the value halfway between its two ends returned. When every
    candidate scores the same, nothing is learnt and ``current`` is returned.

    Why: the curve is a mean over a few folds of a metric that moves in steps of one sample,
    so its maximum is noisy -- neighbouring candidates whose scores differ by less than the
    noise are equally supported by the data. The middle of that run is the decision least
    sensitive to where, inside the run, the noise put the maximum (TabPFN's convention). The
    tolerance is relative, so it means the same for every scorer's scale: 1 % of the range
    of macro-F1 over a class's offsets (typically 0.3--0.8) is 0.003--0.008, the size of
    the fold-to-fold noise of macro-F1 on a thousand samples.
    """
    tol = PLATEAU_TOL if tol is None else tol
    best = int(np.argmax(scores))
    top, span = scores[best], scores[best] - np.min(scores)
    if not span > 0:
        return current
    near = scores >= top - tol * span
    lo = best
    while lo > 0 and near[lo - 1]:
        lo -= 1
    hi = best
    while hi < len(scores) - 1 and near[hi + 1]:
        hi += 1
    return 0.5 * (candidates[lo] + candidates[hi])


def candidate_values(switches, thresholds, focus=None):
    """Sorted candidates for one coordinate: where decisions switch, or the given values.

    ``thresholds`` an integer: midpoints between consecutive distinct quantiles, at
    ``thresholds`` evenly spaced levels, of the switching points ``switches`` of all samples
    and of those selected by ``focus`` (the samples of the class or label being tuned: a
    rare class's samples would otherwise share one or two candidates). No sample sits on a
    candidate. An array: its values. The switching points of a coordinate do not depend on
    its own current value.
    """
    if not isinstance(thresholds, Integral):
        return np.unique(np.asarray(thresholds, dtype=np.float64))
    finite = np.isfinite(switches)
    levels = np.linspace(0.0, 1.0, thresholds)
    groups = [switches[finite]]
    if focus is not None:
        groups.append(switches[finite & focus])
    if groups[0].size == 0:
        return groups[0]
    points = np.unique(np.concatenate([np.quantile(g, levels) for g in groups if g.size]))
    if points.size <= 1:
        return points
    return 0.5 * (points[:-1] + points[1:])


class BinaryThreshold:
    """scikit-learn's threshold rule for binary targets (see the module docstring).

    Parameters
    ----------
    pos : int
        Index in ``classes`` of the class the response scores (predicted when the response is
        at least the threshold).
    thresholds : int or array-like
    """

    def __init__(self, pos, thresholds):
        self.pos, self.thresholds = pos, thresholds

    def search(self, objective, folds):
        curves = []
        for fold in folds:
            response = fold.response
            if isinstance(self.thresholds, Integral):
                grid = np.linspace(np.min(response), np.max(response), self.thresholds)
            else:
                grid = np.asarray(self.thresholds)
            curves.append((grid, objective.classes_scores(fold, self._labels(response, grid))))
        if any(np.isclose(grid[0], grid[-1]) for grid, _ in curves):
            raise ValueError(
                "The provided estimator makes constant predictions. Therefore, it is "
                "impossible to optimize the decision threshold."
            )
        if isinstance(self.thresholds, Integral):
            low = min(grid.min() for grid, _ in curves)
            high = max(grid.max() for grid, _ in curves)
            grid = np.linspace(low, high, num=self.thresholds)
        else:
            grid = np.asarray(self.thresholds)
        mean = np.mean([np.interp(grid, g, s) for g, s in curves], axis=0)
        best = mean.argmax()
        self.threshold, self.score = grid[best], mean[best]
        self.cv_results = {"thresholds": grid, "scores": mean}
        return self

    def _labels(self, response, grid):
        above = response[None, :] >= np.asarray(grid)[:, None]
        return np.where(above, self.pos, 1 - self.pos)

    def labels(self, response):
        """Class indices of ``response`` (n,) under the chosen threshold."""
        return self._labels(response, [self.threshold])[0]


class _CoordinateRule:
    """Coordinate ascent over one decision parameter per class (or label)."""

    def __init__(self, thresholds, start):
        self.thresholds, self.start = thresholds, start

    def search(self, objective, folds):
        n_coords = folds[0].response.shape[1]
        values = np.full(n_coords, self.start, dtype=np.float64)
        history = {"coordinate": [], "candidates": [], "scores": [], "chosen": []}
        decided = [self._labels(f.response, values) for f in folds]
        for _ in range(MAX_SWEEPS):
            for k in self._coordinates(folds):
                switches = np.concatenate([self._switches(f.response, values, k) for f in folds])
                focus = np.concatenate([self._focus(f.y, k) for f in folds])
                candidates = candidate_values(switches, self.thresholds, focus)
                if candidates.size == 0:
                    continue
                scores = self._mean_scores(objective, folds, values, k, candidates)
                chosen = plateau_middle(candidates, scores, values[k])
                # the candidates need not include the current value: keep it when the
                # plateau's middle scores clearly worse (by more than the plateau's tolerance)
                pair = np.array([values[k], chosen])
                now, then = self._mean_scores(objective, folds, values, k, pair)
                if then >= now - PLATEAU_TOL * (scores.max() - scores.min()):
                    values[k] = chosen
                for key, item in zip(history, (k, candidates, scores, values[k])):
                    history[key].append(item)
            before, decided = decided, [self._labels(f.response, values) for f in folds]
            if all(np.array_equal(a, b) for a, b in zip(before, decided)):
                break  # a sweep that changes no out-of-fold decision: converged
        self.values = self._normalised(values)
        self.score = float(np.mean([self._fold_score(objective, f) for f in folds]))
        self.cv_results = {
            "coordinate": np.asarray(history["coordinate"], dtype=np.intp),
            "candidates": history["candidates"],
            "scores": history["scores"],
            "chosen": np.asarray(history["chosen"], dtype=np.float64),
        }
        return self

    def _mean_scores(self, objective, folds, values, k, candidates):
        return np.mean([self._scores(objective, f, values, k, candidates) for f in folds], axis=0)

    def _coordinates(self, folds):
        return range(folds[0].response.shape[1])

    def _normalised(self, values):
        return values


class ClassOffsets(_CoordinateRule):
    """Per-class offsets on the log posterior, multiclass targets (see the module docstring).

    The offsets are returned centred (mean zero): adding a constant to every class changes
    no decision.
    """

    def __init__(self, thresholds):
        super().__init__(thresholds, 0.0)

    @staticmethod
    def _coordinates(folds):
        # adding a constant to every offset changes no decision: the most frequent class
        # keeps offset 0 (the reference) and the others are searched
        y = np.concatenate([f.y for f in folds])
        counts = np.bincount(y, minlength=folds[0].response.shape[1])
        reference = int(np.argmax(counts))
        return [k for k in range(len(counts)) if k != reference]

    @staticmethod
    def _rivals(response, values, k):
        shifted = response + values
        shifted[:, k] = -np.inf
        rival = shifted.argmax(axis=1)
        return rival, shifted[np.arange(len(rival)), rival]

    @staticmethod
    def _focus(y, k):
        return y == k

    def _switches(self, response, values, k):
        # class k wins sample i once its offset reaches (best other shifted score) - s_ik
        _, best_other = self._rivals(response, values, k)
        return best_other - response[:, k]

    def _scores(self, objective, fold, values, k, candidates):
        rival, best_other = self._rivals(fold.response, values, k)
        own = fold.response[:, k][None, :] + candidates[:, None]
        # argmax with numpy's tie rule: the first of equal scores wins
        wins = (own > best_other) | ((own == best_other) & (k < rival))
        return objective.classes_scores(fold, np.where(wins, k, rival))

    def _fold_score(self, objective, fold):
        return objective.classes_scores(fold, self.labels(fold.response)[None, :])[0]

    def _normalised(self, values):
        return values - values.mean()

    def labels(self, response):
        """Class indices ``argmax_k (response_k + offset_k)``."""
        return self._labels(response, self.values)

    @staticmethod
    def _labels(response, values):
        return np.argmax(response + values, axis=1)


class LabelThresholds(_CoordinateRule):
    """One threshold per label, multilabel targets (see the module docstring).

    Parameters
    ----------
    thresholds : int or array-like
    start : float
        The default threshold of the response (0.5 for probabilities, 0 for log-odds).
    """

    @staticmethod
    def _focus(y, k):
        return y[:, k] == 1

    def _switches(self, response, values, k):
        return response[:, k]

    def _scores(self, objective, fold, values, k, candidates):
        rest = self._labels(fold.response, values)
        pred_k = fold.response[:, k][None, :] >= candidates[:, None]
        return objective.labels_scores(fold, pred_k, k, rest)

    def _fold_score(self, objective, fold):
        labels = self.labels(fold.response)
        return objective.labels_scores(fold, labels[:, :1].T.astype(bool), 0, labels)[0]

    def labels(self, response):
        """The 0/1 indicator ``response >= threshold`` per label."""
        return self._labels(response, self.values)

    @staticmethod
    def _labels(response, values):
        return (response >= values).astype(np.int64)


class ExpectedCost:
    """The Bayes decision of a cost matrix on predicted probabilities (nothing searched)."""

    def __init__(self, cost):
        self.cost = cost

    def search(self, objective, folds):
        costs = []
        for fold in folds:
            cost = self.cost[fold.y, self.labels(fold.response)]
            costs.append(np.average(cost, weights=fold.weights))
        self.score = -float(np.mean(costs))
        self.cv_results = {"scores": -np.asarray(costs)}
        return self

    def labels(self, response):
        """Class indices ``argmin_j sum_i p_i C_ij`` of probabilities ``response`` (n, K)."""
        return np.argmin(response @ self.cost, axis=1)

    def threshold(self):
        """Binary targets: the probability of ``classes_[1]`` above which it is predicted."""
        c = self.cost
        if c.shape != (2, 2):
            return None
        regret_0, regret_1 = c[0, 1] - c[0, 0], c[1, 0] - c[1, 1]
        if not regret_0 + regret_1 > 0:
            return None
        return float(regret_0 / (regret_0 + regret_1))


def check_cost_matrix(cost, classes, target):
    """``scoring`` as a cost matrix, checked against the target before any training."""
    name = "scoring (a cost matrix)"
    if target == "multilabel-indicator":
        raise ValueError(
            f"{name} needs a binary or multiclass target, one cost per (true class, predicted "
            "class) pair; got a multilabel target. Score each label with a metric instead, "
            "e.g. scoring='f1_macro'."
        )
    try:
        matrix = np.asarray(cost, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric; got {cost!r}.") from exc
    n = len(classes)
    if matrix.shape != (n, n):
        raise ValueError(
            f"{name} must have shape (n_classes, n_classes) = ({n}, {n}) for the classes "
            f"{classes.tolist()!r} (rows: true class, columns: predicted class, in that "
            f"order); got shape {matrix.shape}."
        )
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} must be finite; got {matrix.tolist()!r}.")
    if np.all(matrix == matrix[:, :1]):
        raise ValueError(
            f"{name} gives every prediction the same cost in each row, so there is no "
            f"decision to take; got {matrix.tolist()!r}."
        )
    off = np.where(np.eye(n, dtype=bool), -np.inf, matrix)
    if np.all(np.diag(matrix) > off.max(axis=1)):
        raise ValueError(
            f"{name} makes every correct prediction cost more than every error, which reads "
            f"as a gain matrix: costs are minimised. Pass costs (e.g. the negated gains); got "
            f"{matrix.tolist()!r}."
        )
    return matrix
