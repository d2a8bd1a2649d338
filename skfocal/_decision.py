r"""TunedDecisionClassifierCV: decisions tuned to the metric a user is scored on.

``fit`` reads validate -> train the members -> out-of-fold responses -> search -> fitted:

1. every check that needs no model (the target, ``scoring``, a cost matrix, ``cv`` and
   ``refit``, the response method) runs before anything trains;
2. :func:`~skfocal._decision_members.fit_members` trains one clone of the estimator per split
   and the refit member -- the one place anything trains, so that a faster engine (many
   members trained as one stacked run) can take its place;
3. :func:`~skfocal._decision_members.fold` turns each fold member's responses on its
   held-out rows into a :class:`~skfocal._decision_metrics.Fold`;
4. a rule of :mod:`skfocal._decision_rules` is searched on those folds only, scored by an
   :class:`~skfocal._decision_metrics.Objective`.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import check_scoring, get_scorer_names, make_scorer
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit, check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils import Bunch, get_tags, indexable
from sklearn.utils._param_validation import HasMethods, Interval, RealNotInt, StrOptions
from sklearn.utils.metadata_routing import MetadataRouter, MethodMapping, process_routing
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d

from . import _decision_metrics, _decision_rules, _inputs
from ._classifier import FocalClassifier
from ._decision_members import (
    MULTILABEL,
    fit_members,
    fold,
    is_dict,
    n_rows,
    response,
    splittable,
    to_numpy,
)
from ._decision_metrics import (
    Objective,
    accepts_sample_weight,
    metric_of,
    pos_label_of,
    scorer_parts,
)

_RESPONSES = ("predict_proba", "decision_function")


@dataclass
class _Plan:
    """What a fit decides before anything trains (every check done)."""

    y: np.ndarray  # the target as an ndarray (labels, or the multilabel indicator)
    kind: str  # "binary", "multiclass", MULTILABEL, or "cost" (a cost matrix)
    classes: np.ndarray  # class labels (label indices for multilabel targets)
    cost: np.ndarray | None
    scorer: object
    metric: object  # the vectorised Metric of the scorer, or None
    response_method: str
    pos_label: object  # binary targets: the class a threshold applies to
    cv: object  # a splitter, or "prefit"
    routed: Bunch  # the metadata of the estimator's fit, the splitter and the scorer


def _estimator_has(attr):
    """Whether the fitted ``estimator_`` (else the unfitted ``estimator``) has ``attr``."""

    def check(self):
        return hasattr(getattr(self, "estimator_", self.estimator), attr)

    return check


class TunedDecisionClassifierCV(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    r"""Classifier whose decisions are tuned by cross-validation to maximise a metric.

    The estimator's probabilities (or decision scores) are kept; what changes is how they
    become labels, chosen on out-of-fold predictions for the metric given by ``scoring``:

    * binary targets: a threshold on the positive class's response, by scikit-learn's rule --
      the same folds and grid give the same ``best_threshold_`` and predictions as
      :class:`~sklearn.model_selection.TunedThresholdClassifierCV`;
    * multiclass targets: per-class offsets :math:`b` added to the log posterior,
      :math:`\hat y = \operatorname{argmax}_k (\log p_k + b_k)` -- the form of a change of class
      prior (``class_prior``), searched by coordinate ascent, keeping the middle of the
      near-optimal plateau;
    * multilabel targets: one threshold per label, searched the same way;
    * a cost matrix as ``scoring``: the expected-cost (Bayes) decision
      :math:`\hat y = \operatorname{argmin}_j \sum_i p_i C_{ij}` on the predicted probabilities;
      nothing is searched.

    Read more in :ref:`decisions`.

    Parameters
    ----------
    estimator : estimator instance
        The classifier, fitted or not, whose decisions are tuned. It needs ``predict_proba``
        or ``decision_function``.

    scoring : str, callable or array-like, default="balanced_accuracy"
        What the decision maximises:

        * a scorer name that scores labels (see :func:`sklearn.metrics.get_scorer_names`;
          names of ranking and probability scores, such as ``"roc_auc"`` or
          ``"neg_log_loss"``, are refused: no decision changes them);
        * a scorer callable ``scorer(estimator, X, y)``, e.g. ``make_scorer(fbeta_score,
          beta=2)``;
        * a cost matrix of shape (n_classes, n_classes): ``scoring[i, j]`` is the cost of
          predicting ``classes_[j]`` when the truth is ``classes_[i]``; costs are minimised.
          Entries may be negative (benefits): adding a constant to a row changes no
          decision.

        ``accuracy``, ``balanced_accuracy``, F-beta, ``precision``, ``recall`` and ``jaccard``
        (binary, macro, micro or weighted averages), by name or through ``make_scorer``, are
        computed from confusion counts for all candidates at once; other scorers are called
        once per candidate and fold.

    response_method : {"auto", "decision_function", "predict_proba"}, default="auto"
        The estimator's method whose output is thresholded or offset; ``"auto"`` tries
        ``predict_proba`` then ``decision_function``. Multiclass offsets apply to the log of
        ``predict_proba`` or to ``decision_function``. A cost matrix needs ``predict_proba``.

    thresholds : int or array-like, default=100
        Binary targets: the number of thresholds of scikit-learn's grid, or the thresholds.
        Multiclass and multilabel targets: the number of candidate values scored per class
        (quantiles of where decisions switch), or the candidate values themselves.

    cv : int, float, cross-validation generator, iterable or "prefit", default=None
        How the out-of-fold predictions are made, as in ``TunedThresholdClassifierCV``:
        ``None`` is 5-fold (stratified for binary and multiclass targets), an integer the
        number of folds, a float in (0, 1) one shuffled split with that validation fraction,
        ``"prefit"`` scores the already-fitted ``estimator`` on the data passed to ``fit``
        (which should then be data it was not trained on). A
        :class:`~sklearn.frozen.FrozenEstimator` is never refitted.

    refit : bool, default=True
        Whether ``estimator_`` is refitted on all the data once the decision is chosen.
        ``refit=False`` needs a single split (the member trained on it is kept) or
        ``cv="prefit"``; ``refit=True`` cannot go with ``cv="prefit"``. The fold members
        and the refit member of a :class:`~skfocal.FocalClassifier` resolve its ``"auto"``
        defaults (``early_stopping``, ``max_epochs``) once, from the rows given to ``fit``,
        so that they are trained alike.

    n_jobs : int, default=None
        Jobs training the members in parallel (``None`` means 1 unless in a
        :func:`joblib.parallel_backend` context).

    random_state : int, RandomState instance or None, default=None
        Seeds the split when ``cv`` is a float.

    store_cv_results : bool, default=False
        Whether to keep the scores of the search in ``cv_results_``.

    Attributes
    ----------
    estimator_ : estimator instance
        The fitted classifier used to predict.

    classes_ : ndarray of shape (n_classes,)
        The class labels (``estimator_.classes_``).

    decision_rule_ : {"threshold", "offsets", "label_thresholds", "expected_cost"}
        The rule chosen for the target and ``scoring``.

    response_method_ : {"predict_proba", "decision_function"}
        The method whose output the decision uses.

    best_threshold_ : float or ndarray of shape (n_labels,)
        Binary targets: the threshold on the response of ``pos_label_`` (with a cost matrix:
        the probability above which the Bayes decision predicts ``classes_[1]``, when the
        costs define one). Multilabel targets: one threshold per label.

    pos_label_ : object
        Binary targets: the class the threshold applies to (the scorer's ``pos_label``, else
        ``classes_[1]``, as scikit-learn decides it).

    class_offsets_ : ndarray of shape (n_classes,)
        Multiclass targets (not a cost matrix): the offsets added to the log posterior,
        centred to mean zero.

    cost_matrix_ : ndarray of shape (n_classes, n_classes)
        The cost matrix, when ``scoring`` is one.

    best_score_ : float
        The cross-validated score of the chosen decision: the mean over folds of the scorer
        (for a cost matrix, minus the mean cost per sample). Binary targets: the value of
        scikit-learn's interpolated mean curve at ``best_threshold_``.

    cv_results_ : dict
        With ``store_cv_results=True``. Binary targets: ``"thresholds"`` and ``"scores"`` (the
        mean curve); multiclass and multilabel targets: per coordinate step,
        ``"coordinate"`` (class or label index), ``"candidates"``, ``"scores"`` (their mean
        over folds) and ``"chosen"``; a cost matrix: ``"scores"`` per fold.

    n_features_in_ : int
        Number of features seen during ``fit``, when the estimator has it.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during ``fit``, when the estimator has them.

    See Also
    --------
    sklearn.model_selection.TunedThresholdClassifierCV : The binary threshold tuner whose rule
        and parameters this estimator follows.
    FocalClassifier : ``class_prior`` gives the decisions of accuracy (``"data"``) and
        balanced accuracy (``"balanced"``) without any search.

    Notes
    -----
    **Where this differs from TunedThresholdClassifierCV.** Multiclass and multilabel targets
    and cost matrices are supported. ``predict_proba``, ``predict_log_proba`` and
    ``decision_function`` are the estimator's, untuned, as there; so ``predict`` is not the
    argmax of ``predict_proba``. With metadata routing off, fit parameters are passed the way
    :class:`~sklearn.model_selection.GridSearchCV` passes them (``groups`` to the splitter,
    the rest to the estimator's ``fit``, ``sample_weight`` also to the scorer when its call
    accepts one) instead of being refused. ``refit=False`` keeps the member trained on the
    single split instead of training a second, identical one. Scorers of rankings or
    probabilities are refused.

    **Multiclass offsets.** A change of class prior from :math:`\pi` to :math:`\pi'` moves the
    log posterior by :math:`\log(\pi'_k / \pi_k)` (Saerens et al., 2002); the offsets are that
    shift, chosen for the metric instead of for a prior. For balanced accuracy the Bayes
    decision is :math:`\operatorname{argmax}_k \eta_k / \pi_k`, :math:`b_k = -\log \pi_k`
    (``FocalClassifier(class_prior="balanced")``); for accuracy, no offset
    (``class_prior="data"``). For F-scores the optimal offsets depend on the data and are
    searched: one class at a time, each candidate offset is scored on the out-of-fold
    responses (mean over folds), and the middle of the run of candidates within 1 % of the
    score's range from the best is kept, until a sweep over all classes changes nothing.

    **A cost matrix** needs calibrated probabilities: the decision
    :math:`\operatorname{argmin}_j \sum_i p_i C_{ij}` is the Bayes decision only if :math:`p`
    is the posterior. A :class:`FocalClassifier` (or a Pipeline ending in one) left at
    ``class_prior="training"`` is therefore cloned with ``class_prior="data"`` (its
    probabilities under the data's class frequencies, whatever ``alpha``, ``class_weight``
    or ``sampler`` emphasised); an explicit ``class_prior`` is kept as the deployment prior.
    Per-class offsets express a cost matrix only when each row's errors cost the same, which
    is why a cost matrix has a rule of its own. Nothing is searched: the folds only estimate
    ``best_score_`` (``cv="prefit"`` with a fitted estimator skips them).

    References
    ----------
    M. Saerens, P. Latinne and C. Decaestecker, "Adjusting the Outputs of a Classifier to New
    a Priori Probabilities: A Simple Procedure", Neural Computation 14(1), 2002.

    C. Elkan, "The Foundations of Cost-Sensitive Learning", IJCAI 2001.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skfocal import TunedDecisionClassifierCV
    >>> X, y = make_classification(
    ...     n_samples=600, n_classes=3, n_informative=4, weights=[0.8, 0.15, 0.05],
    ...     random_state=0,
    ... )
    >>> tuned = TunedDecisionClassifierCV(LogisticRegression(), scoring="f1_macro").fit(X, y)
    >>> tuned.decision_rule_, tuned.class_offsets_.shape
    ('offsets', (3,))
    >>> cost = np.array([[0, 1, 1], [5, 0, 1], [20, 5, 0]])  # missing class 2 costs 20
    >>> by_cost = TunedDecisionClassifierCV(LogisticRegression(), scoring=cost).fit(X, y)
    >>> by_cost.decision_rule_, bool(by_cost.best_score_ <= 0)
    ('expected_cost', True)
    """

    _parameter_constraints: dict = {
        "estimator": [
            HasMethods(["fit", "predict_proba"]),
            HasMethods(["fit", "decision_function"]),
        ],
        "scoring": [StrOptions(set(get_scorer_names())), callable, "array-like"],
        "response_method": [StrOptions({"auto", "predict_proba", "decision_function"})],
        "thresholds": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "cv": [
            "cv_object",
            StrOptions({"prefit"}),
            Interval(RealNotInt, 0.0, 1.0, closed="neither"),
        ],
        "refit": ["boolean"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "store_cv_results": ["boolean"],
    }

    def __init__(
        self,
        estimator,
        *,
        scoring="balanced_accuracy",
        response_method="auto",
        thresholds=100,
        cv=None,
        refit=True,
        n_jobs=None,
        random_state=None,
        store_cv_results=False,
    ):
        self.estimator = estimator
        self.scoring = scoring
        self.response_method = response_method
        self.thresholds = thresholds
        self.cv = cv
        self.refit = refit
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.store_cv_results = store_cv_results

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.classifier_tags.multi_label = inner.classifier_tags.multi_label
        tags.target_tags.multi_output = inner.target_tags.multi_output
        return tags

    @property
    def classes_(self):
        """The class labels of the fitted estimator."""
        return self.estimator_.classes_

    # ------------------------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)  # the estimator is validated by its fit
    def fit(self, X, y, **params):
        """Fit the members, then choose the decision on their out-of-fold responses.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, as the estimator accepts it.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Target: binary, multiclass, or a multilabel indicator matrix.
        **params : dict
            Parameters for the estimator's ``fit``, the splitter and the scorer, routed as
            scikit-learn routes them (see the class Notes).

        Returns
        -------
        self : TunedDecisionClassifierCV
            The fitted meta-estimator.
        """
        if not is_dict(X):
            X, y = indexable(X, y)
        plan = self._plan(X, y, params)
        members, splits = self._train(plan, X, y)
        folds = [fold(member, X, y, rows, plan) for member, (_, rows) in zip(members, splits)]
        objective = Objective(plan.scorer, plan.metric, plan.classes, plan.kind == MULTILABEL)
        self._set_fitted(plan, self._make_rule(plan).search(objective, folds))
        return self

    def _plan(self, X, y, params):
        """Every check and choice that needs no model, before anything trains."""
        y_np, target, classes = _check_target(y, params.get("sample_weight"))
        n_samples = n_rows(X)
        if n_samples != y_np.shape[0]:
            raise ValueError(
                f"X and y have inconsistent numbers of samples: {n_samples} and {y_np.shape[0]}."
            )
        cv = self._check_cv(y_np, target)
        if _is_prefit(cv) and target != MULTILABEL:
            classes = _prefit_classes(self.estimator, classes)
        cost = None
        if _is_cost_matrix(self.scoring):
            cost = _decision_rules.check_cost_matrix(self.scoring, classes, target)
        scorer = self._scorer(cost)
        parts = None if cost is not None else scorer_parts(scorer)
        kind = "cost" if cost is not None else target
        pos_label = None
        if kind == "binary":
            pos_label = _check_pos_label(pos_label_of(parts), classes, self.scoring)
        return _Plan(
            y=y_np,
            kind=kind,
            classes=classes,
            cost=cost,
            scorer=scorer,
            metric=_check_metric(self.scoring, metric_of(parts), target, classes),
            response_method=self._resolve_response_method(cost),
            pos_label=pos_label,
            cv=cv,
            routed=self._route(params, scorer),
        )

    def _train(self, plan, X, y):
        """``(members, splits)``: the fold members and their splits; sets ``estimator_``."""
        n_samples = plan.y.shape[0]
        if _is_prefit(plan.cv):
            self.estimator_ = self.estimator
            return [self.estimator], [(None, np.arange(n_samples))]
        split_params = plan.routed["splitter"]["split"]
        splits = list(plan.cv.split(splittable(X, n_samples), plan.y, **split_params))
        template = self.estimator if plan.cost is None else _for_expected_cost(self.estimator)
        members, refitted = fit_members(
            template,
            X,
            y,
            splits,
            plan.routed["estimator"]["fit"],
            refit=self.refit,
            n_jobs=self.n_jobs,
        )
        self.estimator_ = refitted if self.refit else members[0]
        return members, splits

    def _set_fitted(self, plan, rule):
        self._rule, self._kind, self._classes = rule, plan.kind, plan.classes
        self._pos_label = plan.pos_label
        self.response_method_ = plan.response_method
        self.decision_rule_ = {
            _decision_rules.BinaryThreshold: "threshold",
            _decision_rules.ClassOffsets: "offsets",
            _decision_rules.LabelThresholds: "label_thresholds",
            _decision_rules.ExpectedCost: "expected_cost",
        }[type(rule)]
        self.best_score_ = float(rule.score)
        if isinstance(rule, _decision_rules.BinaryThreshold):
            self.best_threshold_ = float(rule.threshold)
        elif isinstance(rule, _decision_rules.LabelThresholds):
            self.best_threshold_ = rule.values
        elif isinstance(rule, _decision_rules.ClassOffsets):
            self.class_offsets_ = rule.values
        else:
            self.cost_matrix_ = plan.cost
            threshold = rule.threshold()
            if threshold is not None:
                self.best_threshold_ = threshold
        if plan.pos_label is not None:
            self.pos_label_ = plan.pos_label
        if self.store_cv_results:
            self.cv_results_ = rule.cv_results
        for name in ("n_features_in_", "feature_names_in_"):
            if hasattr(self.estimator_, name):
                setattr(self, name, getattr(self.estimator_, name))

    # -- checks before training -------------------------------------------------------------
    def _scorer(self, cost):
        if cost is not None:
            return _cost_scorer(cost)
        if isinstance(self.scoring, str) and self.scoring in _decision_metrics.RANKING_SCORERS:
            raise ValueError(
                f"scoring={self.scoring!r} scores the estimator's probabilities or decision "
                "scores, which no decision changes; pass a metric of labels (e.g. 'f1', "
                "'f1_macro', 'balanced_accuracy', a make_scorer(...) of one) or a cost matrix."
            )
        return check_scoring(self.estimator, scoring=self.scoring)

    def _resolve_response_method(self, cost):
        wanted = self.response_method
        if cost is not None and wanted == "decision_function":
            raise ValueError(
                "response_method='decision_function' cannot go with a cost matrix as scoring: "
                "the expected-cost decision needs probabilities. Use response_method='auto' "
                "or 'predict_proba'."
            )
        options = ["predict_proba"] if cost is not None else _RESPONSES
        if wanted != "auto":
            options = [wanted]
        for method in options:
            if hasattr(self.estimator, method):
                return method
        raise ValueError(
            f"response_method={wanted!r} needs the estimator to have "
            f"{' or '.join(options)}; {type(self.estimator).__name__} has "
            f"{[m for m in _RESPONSES if hasattr(self.estimator, m)] or 'neither'}."
        )

    def _check_cv(self, y, target):
        if isinstance(self.cv, Real) and not isinstance(self.cv, Integral) and 0 < self.cv < 1:
            split = ShuffleSplit if target == MULTILABEL else StratifiedShuffleSplit
            return split(n_splits=1, test_size=self.cv, random_state=self.random_state)
        if isinstance(self.cv, str) and self.cv == "prefit":
            if self.refit:
                raise ValueError(
                    "refit=True cannot go with cv='prefit': the estimator is already fitted "
                    "and is used as it is. Pass refit=False."
                )
            try:
                check_is_fitted(self.estimator, "classes_")
            except NotFittedError as exc:
                raise NotFittedError(
                    "When cv='prefit', `estimator` must be fitted; "
                    f"{type(self.estimator).__name__} is not."
                ) from exc
            return "prefit"
        cv = check_cv(self.cv, y=y, classifier=True)
        if not self.refit and cv.get_n_splits() > 1:
            raise ValueError(
                f"refit=False needs a single split (a float cv) or cv='prefit'; cv={self.cv!r} "
                f"has {cv.get_n_splits()} splits. Pass refit=True."
            )
        return cv

    def _make_rule(self, plan):
        if plan.kind == "cost":
            return _decision_rules.ExpectedCost(plan.cost)
        if plan.kind == "binary":
            pos = int(np.flatnonzero(plan.classes == plan.pos_label)[0])
            return _decision_rules.BinaryThreshold(pos, self.thresholds)
        if plan.kind == "multiclass":
            return _decision_rules.ClassOffsets(self.thresholds)
        start = 0.5 if plan.response_method == "predict_proba" else 0.0
        return _decision_rules.LabelThresholds(self.thresholds, start)

    # -- metadata routing ----------------------------------------------------------------------
    def _route(self, params, scorer):
        if get_config().get("enable_metadata_routing", False):
            return process_routing(self, "fit", **params)
        params = dict(params)
        groups = params.pop("groups", None)
        score = {}
        if params.get("sample_weight") is not None and accepts_sample_weight(scorer):
            score["sample_weight"] = params["sample_weight"]
        return Bunch(
            estimator=Bunch(fit=params),
            splitter=Bunch(split={"groups": groups} if groups is not None else {}),
            scorer=Bunch(score=score),
        )

    def get_metadata_routing(self):
        """Get metadata routing of this object.

        See scikit-learn's user guide on metadata routing for how the mechanism works.

        Returns
        -------
        routing : MetadataRouter
            The estimator's ``fit``, the splitter's ``split`` and the scorer's ``score``,
            all called from ``fit``.
        """
        if _is_cost_matrix(self.scoring):
            scorer = _cost_scorer(None).set_score_request(sample_weight=True)
        else:
            scorer = check_scoring(self.estimator, scoring=self.scoring)
        return (
            MetadataRouter(owner=self.__class__.__name__)
            .add(
                estimator=self.estimator,
                method_mapping=MethodMapping().add(caller="fit", callee="fit"),
            )
            .add(splitter=self.cv, method_mapping=MethodMapping().add(caller="fit", callee="split"))
            .add(scorer=scorer, method_mapping=MethodMapping().add(caller="fit", callee="score"))
        )

    # -- prediction ------------------------------------------------------------------------------
    def predict(self, X):
        """Predict labels with the tuned decision.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples, as the estimator accepts them.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or the 0/1 indicator matrix of multilabel targets.
        """
        check_is_fitted(self, "estimator_")
        values, _ = response(
            self.estimator_, X, self.response_method_, self._classes, self._kind, self._pos_label
        )
        labels = self._rule.labels(values)
        return labels if self._kind == MULTILABEL else self._classes[labels]

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """The estimator's class probabilities (untuned).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            ``estimator_.predict_proba(X)``.
        """
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """The estimator's log class probabilities (untuned).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            ``estimator_.predict_log_proba(X)``.
        """
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """The estimator's decision function (untuned, as in TunedThresholdClassifierCV).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            ``estimator_.decision_function(X)``.
        """
        check_is_fitted(self, "estimator_")
        return self.estimator_.decision_function(X)


# -- checks ----------------------------------------------------------------------------------------
_TARGETS = ("binary", "multiclass", MULTILABEL)


def _check_target(y, sample_weight=None):
    """``(y as an ndarray, its type, its classes)``; errors for targets no rule decides."""
    if y is None:
        raise ValueError(
            "TunedDecisionClassifierCV requires y to be passed, but the target y is None."
        )
    y_np = _inputs.y_to_numpy(y)
    if y_np.ndim == 2 and y_np.shape[1] == 1:
        y_np = column_or_1d(y_np, warn=True)
    target = type_of_target(y_np, input_name="y")
    if target not in _TARGETS:
        raise ValueError(
            f"TunedDecisionClassifierCV decides binary, multiclass and multilabel-indicator "
            f"targets. Unknown label type: {target!r}."
        )
    if target == MULTILABEL:
        return y_np, target, np.arange(y_np.shape[1])
    classes = np.unique(y_np)
    if len(classes) < 2:
        raise ValueError(
            f"TunedDecisionClassifierCV needs at least two classes in y; got only one class, "
            f"{classes.tolist()!r}."
        )
    if sample_weight is not None:
        weighted = np.unique(y_np[np.asarray(to_numpy(sample_weight)) > 0])
        if len(weighted) < 2:
            raise ValueError(
                "sample_weight must leave at least two classes with a positive weight; only "
                f"{weighted.tolist()!r} of the classes {classes.tolist()!r} have one."
            )
    return y_np, target, classes


def _prefit_classes(estimator, classes):
    """The classes of a prefit estimator, which must hold every label of ``y``."""
    known = np.asarray(estimator.classes_)
    unknown = np.setdiff1d(classes, known)
    if unknown.size:
        raise ValueError(
            f"With cv='prefit', y may hold only the classes the estimator was fitted on, "
            f"{known.tolist()!r}; got also {unknown.tolist()!r}."
        )
    return known


def _is_prefit(cv):
    return isinstance(cv, str) and cv == "prefit"


def _is_cost_matrix(scoring):
    return not isinstance(scoring, str) and not callable(scoring)


def _check_metric(scoring, metric, target, classes):
    """The vectorised metric for this target (None: the generic path); errors for a metric
    that cannot score the target."""
    if metric is None:
        return None
    if metric.average == "binary":
        if target != "binary":
            raise ValueError(
                f"scoring={scoring!r} scores one positive class (average='binary'), which a "
                f"{target} target does not have; use an average over classes, e.g. "
                "'f1_macro', 'f1_micro' or 'f1_weighted', or make_scorer(..., "
                "average='macro')."
            )
        if metric.pos_label not in classes.tolist():
            raise ValueError(
                f"scoring={scoring!r} scores the positive class pos_label="
                f"{metric.pos_label!r}, which is not one of the classes "
                f"{classes.tolist()!r}; pass make_scorer(<metric>, pos_label=<a class>)."
            )
    if target == MULTILABEL and metric.family in ("accuracy", "balanced_accuracy"):
        if metric.family == "balanced_accuracy":
            raise ValueError(
                f"scoring={scoring!r} is not defined for a multilabel target; use 'f1_macro', "
                "'f1_micro', 'jaccard_macro', ... or a scorer of your own."
            )
        return None  # subset accuracy: the generic path
    return metric


def _check_pos_label(pos_label, classes, scoring):
    """The class a binary threshold applies to: the scorer's ``pos_label``, else classes[1]."""
    if pos_label is None:
        return classes[1]
    if pos_label not in classes.tolist():
        raise ValueError(
            f"scoring={scoring!r} scores pos_label={pos_label!r}, which is not one of the "
            f"classes {classes.tolist()!r}; pass make_scorer(<metric>, pos_label=<a class>)."
        )
    return classes[np.flatnonzero(classes == pos_label)[0]]


def _mean_cost(y_true, y_pred, *, cost_matrix, sample_weight=None):
    """Mean cost per sample of class indices ``y_pred`` (rows of ``cost_matrix``: the truth)."""
    return float(np.average(cost_matrix[y_true, y_pred], weights=sample_weight))


def _cost_scorer(cost):
    """The scorer a cost matrix stands for in metadata routing (it consumes sample_weight);
    the search computes the cost itself (:class:`~skfocal._decision_rules.ExpectedCost`)."""
    return make_scorer(_mean_cost, greater_is_better=False, cost_matrix=cost)


def _for_expected_cost(estimator):
    """``estimator`` to train for a cost matrix: a FocalClassifier (or a Pipeline ending in
    one) at ``class_prior="training"`` gets ``class_prior="data"`` (calibrated probabilities)."""
    final, key = estimator, "class_prior"
    if isinstance(estimator, Pipeline):
        name, final = estimator.steps[-1]
        key = f"{name}__class_prior"
    prior = getattr(final, "class_prior", None)
    if isinstance(final, FocalClassifier) and isinstance(prior, str) and prior == "training":
        return clone(estimator).set_params(**{key: "data"})
    return estimator
