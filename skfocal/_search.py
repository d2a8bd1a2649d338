r"""BatchedGridSearchCV: scikit-learn's grid search, every candidate x fold trained at once.

:class:`BatchedGridSearchCV` is :class:`~sklearn.model_selection.GridSearchCV` with one
change: how the candidates x folds are fitted. Candidates whose networks share a shape and a
training schedule (the default MLP with the same ``hidden_layer_sizes``, ``batch_size``,
``max_epochs``, optimizer class, ``dtype`` and ``device``) are trained together, all their
folds included, as one :class:`~skfocal._stacked.StackedMLP`; everything else varies per
member (fold rows, seed, loss and its hyperparameters, ``alpha``, ``class_weight``, ``lr``,
``weight_decay``, index samplers, ``bias_init``, ``class_prior``). Each member is planned by
:func:`~skfocal._plan.make_plan` exactly as its single fit on that fold would be, trained by
:func:`~skfocal._stacked.train_stacked`, turned back into a fitted
:class:`~skfocal.FocalClassifier`, and scored by the search's scorer like
:func:`sklearn.model_selection._validation._fit_and_score` scores it; the result dicts are
sklearn's, so that ``cv_results_``, ``best_params_`` and the refit are GridSearchCV's own.

Everything the stacked path does not cover is fitted one by one by scikit-learn's own
``_fit_and_score`` (through joblib, ``n_jobs`` distributing).
"""

from __future__ import annotations

import numbers
import time
import warnings
from collections import defaultdict
from inspect import signature
from itertools import product

import numpy as np
import torch
from sklearn.base import _fit_context, clone, is_classifier
from sklearn.model_selection import GridSearchCV, check_cv
from sklearn.model_selection._validation import (
    _fit_and_score,
    _insert_error_scores,
    _score,
    _warn_or_raise_about_fit_failures,
)
from sklearn.pipeline import Pipeline
from sklearn.utils import indexable
from sklearn.utils.metaestimators import _safe_split
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import _check_method_params, _num_samples

from . import _data, _inputs
from ._classifier import FocalClassifier
from ._engine import Fitted, SkorchEngine, fork_rng
from ._module import build_module, init_output_bias
from ._net import NonFiniteTrainingError
from ._plan import make_plan
from ._stacked import (
    MemberBatches,
    MemberLoss,
    StackedAdam,
    StackedAdamW,
    StackedLoss,
    StackedMLP,
    train_stacked,
)

_OPTIMIZERS = {torch.optim.AdamW: StackedAdamW, torch.optim.Adam: StackedAdam}


_STACKED_LOSSES = ("focal", "cross_entropy", "margin")


def _why_not_stacked(estimator):
    """Why ``estimator`` (a candidate) is fitted on its own, or None when it can be stacked."""
    if type(estimator) is Pipeline:
        if estimator.memory is not None:
            return "the Pipeline caches its steps (memory is set)"
        estimator = estimator.steps[-1][1]
    if type(estimator) is not FocalClassifier:
        return f"the estimator is a {type(estimator).__name__}, not a FocalClassifier"
    if estimator.module is not None:
        return (
            f"module={estimator.module!r} is a user module; only the default MLP "
            "(module=None) is trained stacked"
        )
    if not (isinstance(estimator.loss, str) and estimator.loss in _STACKED_LOSSES):
        return (
            f"loss={estimator.loss!r} has no stacked implementation (the stacked losses are "
            f"{', '.join(_STACKED_LOSSES)})"
        )
    if estimator.accelerator is not None:
        return "an accelerator is set"
    if estimator.callbacks:
        return "callbacks are set"
    if estimator.early_stopping:
        return "early_stopping=True"
    if estimator.warmup_epochs > 0 and estimator.loss != "cross_entropy":
        return "warmup_epochs > 0"
    if estimator.optimizer not in _OPTIMIZERS:
        return f"optimizer={estimator.optimizer!r} is not torch.optim.AdamW or torch.optim.Adam"
    return None


def _group_key(estimator):
    """What members of one stacked model share: the network's shape and training schedule."""
    estimator, _ = _final_step(estimator)
    return (
        tuple(estimator.hidden_layer_sizes),
        estimator.batch_size,
        estimator.max_epochs,
        estimator.optimizer,
        estimator.dtype,
        str(estimator.device),
    )


class BatchedGridSearchCV(GridSearchCV):
    r"""Exhaustive search over a grid, every stackable candidate x fold trained at once.

    A drop-in replacement for :class:`sklearn.model_selection.GridSearchCV` (same parameters,
    same fitted attributes, same ``cv_results_``) for :class:`~skfocal.FocalClassifier`.
    Candidates that share the network's shape and training schedule -- the default MLP with
    the same ``hidden_layer_sizes``, ``batch_size``, ``max_epochs``, optimizer class
    (``torch.optim.AdamW`` or ``Adam``), ``dtype`` and ``device`` -- are trained together
    with all their cross-validation folds as one vectorized model of :math:`M` members
    (candidates :math:`\times` folds). Each member :math:`m` minimises its own loss,

    .. math::

        \theta_m^{(t+1)} = \mathrm{AdamW}_{\eta_m, \lambda_m}\!\left(\theta_m^{(t)},
            \nabla_{\theta_m} \frac{1}{|B_{m,t}|} \sum_{i \in B_{m,t}} w_{m,i}\,
            \ell_m\!\left(f_{\theta_m}(x_i), y_i\right)\right),

    with the batches :math:`B_{m,t}` drawn from its fold's training rows by its own seeded
    sampler, its own loss :math:`\ell_m` (``loss``, ``gamma``, ``alpha``, ``margin``,
    ``softness``), weights :math:`w_m` (``class_weight``, ``sample_weight``), learning rate
    :math:`\eta_m` and weight decay :math:`\lambda_m`: exactly what the same candidate fitted
    alone on that fold computes (up to floating-point rounding; dropout masks are drawn
    differently). The data are on the device once; members gather their minibatches by
    index.

    Candidates that cannot be stacked (a user ``module``, ``accelerator``, ``callbacks``,
    ``early_stopping``, ``warmup_epochs``, another optimizer, a sampler that synthesises rows
    such as SMOTE, non-tabular ``X``, fit parameters other than ``sample_weight``, a cached
    Pipeline, an estimator that is neither a ``FocalClassifier`` nor a
    :class:`~sklearn.pipeline.Pipeline` ending in one) are fitted one by one through
    scikit-learn's own fit-and-score (``n_jobs`` distributes them), with a warning that says
    why. A Pipeline's preprocessing is fitted per fold (once per setting of its parameters)
    and its final classifiers are stacked on the transformed training rows.

    A member whose loss or weights become non-finite gets ``error_score`` (as its failing
    single fit would) while the other members go on.

    Parameters
    ----------
    estimator, param_grid, scoring, n_jobs, refit, cv
        As in :class:`sklearn.model_selection.GridSearchCV`.
    verbose, pre_dispatch, error_score, return_train_score
        As in :class:`sklearn.model_selection.GridSearchCV`.

    Attributes
    ----------
    n_splits_, refit_time_, multimetric_, classes_, n_features_in_, feature_names_in_
        As in :class:`sklearn.model_selection.GridSearchCV`.
    cv_results_, best_estimator_, best_score_, best_params_, best_index_, scorer_
        As in :class:`sklearn.model_selection.GridSearchCV`. For members trained together,
        ``mean_fit_time`` / ``std_fit_time`` report the stacked model's wall time (planning,
        training and building the fitted members) divided by its number of members, i.e.
        each fit's share of the batched run; ``score_time`` is measured per member.

    See Also
    --------
    sklearn.model_selection.GridSearchCV : the search this class reproduces.

    Examples
    --------
    >>> import numpy as np
    >>> from skfocal import BatchedGridSearchCV, FocalClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(120, 3))
    >>> y = (X[:, 0] + 0.3 * rng.normal(size=120) > 0.8).astype(int)
    >>> search = BatchedGridSearchCV(
    ...     FocalClassifier(max_epochs=5, random_state=0),
    ...     {"gamma": [0.0, 2.0], "alpha": [None, 0.25]},
    ...     cv=3,
    ... ).fit(X, y)
    >>> sorted(search.best_params_)
    ['alpha', 'gamma']
    >>> search.cv_results_["mean_test_score"].shape
    (4,)
    """

    @_fit_context(prefer_skip_nested_validation=False)  # the estimator is not validated yet
    def fit(self, X, y=None, **params):
        """Run fit with all sets of parameters (see :meth:`GridSearchCV.fit`).

        The structure is scikit-learn's ``BaseSearchCV.fit``; only the evaluation of the
        candidates x folds differs (:meth:`_evaluate`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Target.
        **params : dict
            Parameters of the estimator's ``fit`` (e.g. ``sample_weight``), the scorer and
            the splitter (``groups``), routed as GridSearchCV routes them.

        Returns
        -------
        self : BatchedGridSearchCV
            The fitted search.
        """
        scorers, refit_metric = self._get_scorers()

        X, y = indexable(X, y)
        params = _check_method_params(X, params=params)
        routed_params = self._get_routed_params_for_fit(params)

        if (sample_weight := params.get("sample_weight")) is not None:
            metadata_callbacks = {"sample_weight": sample_weight}
        else:
            metadata_callbacks = None
        root_callback_ctx = self._init_callback_context(
            max_subtasks=1 + (self.refit is not False)
        ).call_on_fit_task_begin(estimator=self, X=X, y=y, metadata=metadata_callbacks)

        self._checked_cv_orig = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        self._check_input_parameters(X=X, y=y, split_params=routed_params.splitter.split)
        self.n_splits_ = self._checked_cv_orig.get_n_splits(X, y, **routed_params.splitter.split)

        base_estimator = clone(self.estimator)

        parallel = Parallel(n_jobs=self.n_jobs, pre_dispatch=self.pre_dispatch)

        fit_and_score_kwargs = dict(
            scorer=scorers,
            fit_params=routed_params.estimator.fit,
            score_params=routed_params.scorer.score,
            return_train_score=self.return_train_score,
            return_n_test_samples=True,
            return_times=True,
            return_parameters=False,
            error_score=self.error_score,
            verbose=self.verbose,
        )
        results = {}
        with parallel:
            all_candidate_params = []
            all_out = []
            all_more_results = defaultdict(list)

            def evaluate_candidates(
                candidate_params, cv=None, more_results=None, callback_ctx=None
            ):
                cv = cv or self._checked_cv_orig
                candidate_params = list(candidate_params)
                n_candidates = len(candidate_params)
                n_splits = self.n_splits_

                cv_splits = list(cv.split(X, y, **routed_params.splitter.split))
                if len(cv_splits) != n_splits:
                    raise ValueError(
                        f"cv.split and cv.get_n_splits return inconsistent results. "
                        f"Expected {n_splits} splits, got {len(cv_splits)}"
                    )
                if self.verbose > 0:
                    print(
                        f"Fitting {n_splits} folds for each of {n_candidates} candidates,"
                        f" totalling {n_candidates * n_splits} fits"
                    )
                n_pairs = n_candidates * n_splits
                if callback_ctx is not None:
                    contexts = [
                        callback_ctx.subcontext(
                            task_name="candidate-split-evaluation", task_id=task_id
                        )
                        for task_id in range(n_pairs)
                    ]
                else:
                    contexts = [None] * n_pairs

                out = self._evaluate(
                    base_estimator,
                    X,
                    y,
                    candidate_params,
                    cv_splits,
                    fit_and_score_kwargs,
                    parallel,
                    contexts,
                )
                if len(out) < 1:
                    raise ValueError(
                        "No fits were performed. Was the CV iterator empty? "
                        "Were there no candidates?"
                    )
                _warn_or_raise_about_fit_failures(out, self.error_score)
                if callable(self.scoring):
                    _insert_error_scores(out, self.error_score)

                all_candidate_params.extend(candidate_params)
                all_out.extend(out)
                if more_results is not None:
                    for key, value in more_results.items():
                        all_more_results[key].extend(value)

                nonlocal results
                results = self._format_results(
                    all_candidate_params, n_splits, all_out, all_more_results
                )
                return results

            if "callback_ctx" in signature(self._run_search).parameters:
                self._run_search(evaluate_candidates, callback_ctx=root_callback_ctx)
            else:
                self._run_search(evaluate_candidates)

            first_test_score = all_out[0]["test_scores"]
            self.multimetric_ = isinstance(first_test_score, dict)
            if callable(self.scoring) and self.multimetric_:
                self._check_refit_for_multimetric(first_test_score)
                refit_metric = self.refit

        if self.refit or not self.multimetric_:
            self.best_index_ = self._select_best_index(self.refit, refit_metric, results)
            if not callable(self.refit):
                self.best_score_ = results[f"mean_test_{refit_metric}"][self.best_index_]
            self.best_params_ = results["params"][self.best_index_]

        if self.refit:
            self.best_estimator_ = clone(base_estimator).set_params(
                **clone(self.best_params_, safe=False)
            )
            refit_subctx = root_callback_ctx.subcontext(task_name="refit-with-best-params")
            with refit_subctx.propagate_callback_context(self.best_estimator_):
                refit_subctx.call_on_fit_task_begin(
                    estimator=self, X=X, y=y, metadata=metadata_callbacks
                )
                refit_start_time = time.time()
                if y is not None:
                    self.best_estimator_.fit(X, y, **routed_params.estimator.fit)
                else:
                    self.best_estimator_.fit(X, **routed_params.estimator.fit)
                refit_end_time = time.time()
            self.refit_time_ = refit_end_time - refit_start_time
            if hasattr(self.best_estimator_, "feature_names_in_"):
                self.feature_names_in_ = self.best_estimator_.feature_names_in_
            refit_subctx.call_on_fit_task_end(estimator=self, X=X, y=y, metadata=metadata_callbacks)

        scorer_dict = getattr(scorers, "_scorers", None)
        self.scorer_ = scorer_dict if scorer_dict is not None else scorers
        self.cv_results_ = results
        root_callback_ctx.call_on_fit_task_end(
            estimator=self, X=X, y=y, metadata=metadata_callbacks
        )
        return self

    # ------------------------------------------------------------------------------------------
    def _evaluate(self, base, X, y, candidate_params, cv_splits, kwargs, parallel, contexts):
        """The ``_fit_and_score`` result dicts of all (candidate, split) pairs, in sklearn's order.

        Stackable candidates are grouped and each group trained as one stacked model
        (:func:`_fit_and_score_stacked`); the other pairs, and members whose plan turns out
        unstackable, go through scikit-learn's ``_fit_and_score``.
        """
        n_splits = len(cv_splits)
        pairs = list(product(enumerate(candidate_params), enumerate(cv_splits)))
        out = [None] * len(pairs)
        groups, sequential, reasons, data_ok = {}, [], {}, {}
        for cand_idx, parameters in enumerate(candidate_params):
            estimator = clone(base).set_params(**clone(parameters, safe=False))
            reason = _why_not_stacked(estimator)
            positions = range(cand_idx * n_splits, (cand_idx + 1) * n_splits)
            if reason is None:
                is_pipeline = type(estimator) is Pipeline
                if is_pipeline not in data_ok:
                    data_ok[is_pipeline] = _stackable_data(estimator, X, kwargs["fit_params"])
                if not data_ok[is_pipeline]:
                    reason = (
                        "X is not a numeric 2-d array, or fit parameters other than "
                        "sample_weight (a Pipeline: any fit parameter) were given"
                    )
            if reason is None:
                groups.setdefault(_group_key(estimator), []).extend(positions)
            else:
                reasons.setdefault(reason, parameters)
                sequential.extend(positions)
        for positions in groups.values():
            members = [(p, pairs[p]) for p in positions]
            done, fallback = _fit_and_score_stacked(base, X, y, members, kwargs)
            for p, result in done.items():
                out[p] = result
            for p, reason in fallback.items():
                reasons.setdefault(reason, pairs[p][0][1])
                sequential.append(p)
        for reason, parameters in reasons.items():
            warnings.warn(
                f"BatchedGridSearchCV fits candidates such as {parameters!r} one by one "
                f"(not stacked) because {reason}.",
                UserWarning,
                stacklevel=4,
            )
        sequential.sort()
        results = parallel(
            delayed(_fit_and_score)(
                clone(base),
                X,
                y,
                train=pairs[p][1][1][0],
                test=pairs[p][1][1][1],
                parameters=pairs[p][0][1],
                split_progress=(pairs[p][1][0], n_splits),
                candidate_progress=(pairs[p][0][0], len(candidate_params)),
                **kwargs,
                caller=self,
                callback_ctx=contexts[p],
            )
            for p in sequential
        )
        for p, result in zip(sequential, results, strict=True):
            out[p] = result
        return out


def _stackable_data(estimator, X, fit_params):
    """Whether ``X`` is a numeric host array and the only fit parameter is ``sample_weight``.

    A Pipeline takes any ``X`` its preprocessing accepts (its output is checked per fold) and
    no fit parameter.
    """
    if type(estimator) is Pipeline:
        return not fit_params
    if any(name != "sample_weight" for name in (fit_params or {})):
        return False
    if isinstance(X, torch.Tensor) or isinstance(X, dict) or hasattr(X, "tocsr"):
        return False
    try:
        array = np.asarray(X)
    except (TypeError, ValueError):
        return False
    return array.ndim == 2 and array.dtype.kind in "fiub"


def _error_scores(scorer, error_score, return_train_score):
    """Test (and train) scores of a failed fit, as ``_fit_and_score`` records them."""
    names = getattr(scorer, "_scorers", None)
    test = {name: error_score for name in names} if names is not None else error_score
    train = None
    if return_train_score:
        train = test.copy() if isinstance(test, dict) else test
    return test, train


class _Member:
    """One (candidate, split) of a stacked model: its classifier, plan and training rows.

    ``classifier`` is the FocalClassifier trained (a Pipeline's final step); ``scored`` what
    is scored (the classifier, or the Pipeline with its preprocessing fitted on the fold);
    ``source`` is ``"X"`` (training rows ``train`` of the search's X) or the key of a block
    of transformed training rows (a Pipeline's preprocessing output on the fold).
    """

    def __init__(self, position, classifier, scored, plan, device, source, train, test):
        self.position, self.classifier, self.scored = position, classifier, scored
        self.plan, self.device, self.source = plan, device, source
        self.train, self.test = np.asarray(train), np.asarray(test)


def _final_step(estimator):
    """``(classifier, pipeline)``: a Pipeline's final step and the Pipeline, or ``(est, None)``."""
    if type(estimator) is Pipeline:
        return estimator.steps[-1][1], estimator
    return estimator, None


def _preprocessing_key(pipeline, parameters):
    """What identifies a Pipeline candidate's preprocessing: its parameters off the last step."""
    last = pipeline.steps[-1][0]
    own = {k: v for k, v in parameters.items() if k != last and not k.startswith(last + "__")}
    return repr(sorted(own.items()))


def _fit_and_score_stacked(base, X, y, members, kwargs):
    """Plan, train as one stacked model, and score members ``[(position, pair), ...]``.

    Returns ``(results, fallback)``: ``{position: result dict}`` of the members trained here
    and ``{position: reason}`` of those to be fitted one by one.
    """
    start = time.time()
    fit_params = kwargs["fit_params"] or {}
    error_score = kwargs["error_score"]
    planned, fallback = [], {}
    blocks, validated = {}, {}
    split_of, current = None, None
    # split by split, so that only one fold's training rows are held as a host copy at a time
    for position, ((_, parameters), (split_idx, (train, test))) in sorted(
        members, key=lambda member: (member[1][1][0], member[0])
    ):
        if split_idx != split_of:
            fold_params = _check_method_params(X, params=fit_params, indices=train)
            X_train, y_train = _safe_split(base, X, y, train)
            split_of, current = split_idx, (X_train, y_train, fold_params.get("sample_weight"))
            validated = {}
        X_train, y_train, sw = current
        scored = clone(base).set_params(**clone(parameters, safe=False))
        estimator, pipeline = _final_step(scored)
        source = "X"
        try:
            if pipeline is not None:  # preprocessing fitted once per fold (and its parameters)
                source = (_preprocessing_key(pipeline, parameters), split_idx)
                if source not in blocks:
                    preprocessing = pipeline[:-1]
                    X_fold = preprocessing.fit_transform(X_train, y_train)
                    blocks[source] = (preprocessing.steps, X_fold)
                steps, X_block = blocks[source]
                pipeline.steps = list(steps) + pipeline.steps[-1:]
                if hasattr(X_block, "tocsr") or not isinstance(X_block, np.ndarray):
                    fallback[position] = "the pipeline's preprocessing does not give an ndarray"
                    continue
            estimator._validate_params()
            # the fold's data are validated once (the members share dtype and module=None);
            # the others take the fitted input attributes of the first
            if source not in validated:
                X_fit = X_train if pipeline is None else X_block
                inputs = estimator._validate_fit_input(X_fit, y_train, sw)
                validated[source] = (inputs, estimator)
            else:
                inputs, first = validated[source]
                for name in ("n_features_in_", "feature_names_in_"):
                    if hasattr(first, name):
                        setattr(estimator, name, getattr(first, name))
            Xv, yv, kind, swv = inputs
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the single fit (if any) warns again
                estimator._check_hyperparameters()
                plan = make_plan(estimator, Xv, yv, kind, swv)
            device = _data.resolve_device(estimator.device, Xv, None)
        except Exception:  # noqa: BLE001 -- sklearn's fit-and-score records the error
            fallback[position] = "its fit fails before training (recorded one by one)"
            continue
        if plan.sampler.synthesises_rows:
            fallback[position] = "its sampler synthesises rows (e.g. SMOTE)"
            continue
        if plan.inputs.form != _inputs.FLOAT or plan.valid_idx is not None:
            fallback[position] = "X is not a float feature matrix"
            continue
        if source != "X":
            blocks[source] = (blocks[source][0], Xv)  # as the classifier validated it
        planned.append(_Member(position, estimator, scored, plan, device, source, train, test))
    del current, validated
    if not planned:
        return {}, fallback
    # members of one stacked model also share the target's classes, the input width and device
    by_classes = {}
    for member in planned:
        plan = member.plan
        key = (
            plan.kind.name,
            plan.n_outputs,
            plan.n_features,
            member.device,
            plan.classes.tobytes(),
            str(plan.classes.dtype),
        )
        by_classes.setdefault(key, []).append(member)
    planning_time = time.time() - start
    results = {}
    for group in by_classes.values():
        share = planning_time * len(group) / len(planned)
        data = {key: block for key, (_, block) in blocks.items()}
        results.update(_train_and_score(group, X, y, data, kwargs, share, error_score))
    return results, fallback


def _shared_data(group, X, blocks):
    """The one host matrix all members train on, and each member's rows in it.

    The search's ``X`` when members train on its rows; followed by the blocks of transformed
    training rows (one per Pipeline preprocessing and fold) that members use.
    """
    parts, offsets, n_rows = [], {}, 0
    if any(member.source == "X" for member in group):
        X_host = np.asarray(X)
        if X_host.dtype not in (np.float32, np.float64):  # as validate_data converts it
            X_host = X_host.astype(np.float32)
        parts.append(X_host)
        n_rows = len(X_host)
    for member in group:
        if member.source != "X" and member.source not in offsets:
            offsets[member.source] = n_rows
            parts.append(blocks[member.source])
            n_rows += len(blocks[member.source])
    rows = [
        member.train
        if member.source == "X"
        else offsets[member.source] + np.arange(member.plan.n_train)
        for member in group
    ]
    shared = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return shared, rows


def _train_and_score(group, X, y, blocks, kwargs, planning_time, error_score):
    """Train one group of planned members as a stacked model and score each member."""
    start = time.time()
    first, plan0, device = group[0].classifier, group[0].plan, group[0].device
    dtype = getattr(torch, first.dtype)
    kind, n_outputs = plan0.kind, plan0.n_outputs
    shared, rows = _shared_data(group, X, blocks)
    n_rows = len(shared)
    with warnings.catch_warnings():  # a read-only array (e.g. from a DataFrame): only read
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        Xt = torch.as_tensor(shared).to(device=device, dtype=dtype)  # the one copy of the data
    del shared
    y_full = np.zeros((n_rows,) + plan0.y_enc.shape[1:], dtype=plan0.y_enc.dtype)
    for member, member_rows in zip(group, rows, strict=True):
        y_full[member_rows] = member.plan.y_enc
    yt = torch.as_tensor(y_full).to(device=device, dtype=kind.y_dtype(dtype))
    del y_full
    weights = None
    if any(member.plan.weights is not None for member in group):
        weights = torch.zeros(len(group), n_rows, dtype=dtype, device=device)
        for m, (member, member_rows) in enumerate(zip(group, rows, strict=True)):
            index = torch.as_tensor(member_rows, device=device)
            w = member.plan.weights
            weights[m, index] = 1.0 if w is None else torch.as_tensor(w, dtype=dtype).to(device)
    mlps, samplers, specs = [], [], []
    with fork_rng(device):
        for member in group:
            plan = member.plan
            params = plan.params
            torch.manual_seed(plan.seeds["torch"])
            module = build_module(
                None, plan.n_features, n_outputs, params["hidden_layer_sizes"], params["dropout"]
            ).to(dtype)
            init_output_bias(module, params["bias_init"], plan.prior, kind, n_outputs)
            mlps.append(module.to(device))
            y_train = None if not kind.balances_classes else plan.y_enc
            samplers.append(
                plan.sampler.epoch_sampler(plan.n_train, y_train, len(plan.classes), device)
            )
            specs.append(_member_loss(plan))
    model = StackedMLP(mlps, dropout_seeds=[member.plan.seeds["torch"] for member in group])
    del mlps
    optimizer = _OPTIMIZERS[first.optimizer](
        model.flat_params,
        model.flat_grads,
        lr=[float(member.plan.params["lr"]) for member in group],
        weight_decay=[float(member.plan.params["weight_decay"]) for member in group],
    )
    loss = StackedLoss(kind, specs, n_outputs, dtype=dtype, device=device)
    train_rows = [torch.as_tensor(r, device=device) for r in rows]
    batches = MemberBatches(samplers, train_rows, first.batch_size, dtype=dtype, device=device)
    history = train_stacked(
        model, optimizer, loss, batches, Xt, yt, max_epochs=first.max_epochs, weights=weights
    )
    del Xt, yt, weights, batches, train_rows
    finite = torch.isfinite(history).all(0) & torch.isfinite(model.flat_params.detach()).all(1)
    finite = finite.cpu()
    engine = SkorchEngine(device, dtype)
    X_like = np.zeros(0, dtype=np.float32)  # host namespace of the fitted attributes
    for m, member in enumerate(group):
        if not bool(finite[m]):
            member.fitted = None
            continue
        plan = member.plan
        net = engine._make_net(plan, model.member(m))
        net.initialize()
        for epoch in range(first.max_epochs):
            net.history.new_epoch()
            net.history.record("epoch", epoch + 1)
            net.history.record("train_loss", float(history[epoch, m]))
            net.history.record("train_batch_count", batches_count(plan, first.batch_size))
        net.predict_nonlinearity = plan.posteriors[0].proba
        member.classifier._set_fitted(plan, Fitted(net, plan.posteriors[0]), X_like, device)
        member.fitted = member.scored
    del model
    fit_time = (planning_time + time.time() - start) / len(group)

    scorer = kwargs["scorer"]
    score_params = kwargs["score_params"] or {}
    results = {}
    for member in group:
        result = {}
        train, test, done = member.train, member.test, member.fitted
        X_test, y_test = _safe_split(member.scored, X, y, test, train)
        score_time = 0.0
        if done is None:
            message = (
                f"{NonFiniteTrainingError.__name__}: Training stopped: the training loss or "
                f"the weights became non-finite (lr={member.plan.params['lr']}). The "
                "optimisation diverged: lower lr, and check that X is scaled."
            )
            if error_score == "raise":
                raise NonFiniteTrainingError(message)
            test_scores, train_scores = _error_scores(
                scorer, error_score, kwargs["return_train_score"]
            )
            result["fit_error"] = message
        else:
            result["fit_error"] = None
            score_start = time.time()
            params_test = _check_method_params(X, params=score_params, indices=test)
            test_scores = _score(done, X_test, y_test, scorer, params_test, error_score)
            score_time = time.time() - score_start
            if kwargs["return_train_score"]:
                X_train, y_train = _safe_split(done, X, y, train)
                params_train = _check_method_params(X, params=score_params, indices=train)
                train_scores = _score(done, X_train, y_train, scorer, params_train, error_score)
        result["test_scores"] = test_scores
        if kwargs["return_train_score"]:
            result["train_scores"] = train_scores
        result["n_test_samples"] = _num_samples(X_test)
        result["fit_time"] = fit_time
        result["score_time"] = score_time
        results[member.position] = result
    return results


def batches_count(plan, batch_size):
    """Number of training batches per epoch of the plan's single fit."""
    size = max(1, min(batch_size, plan.n_train))
    return -(-plan.n_train // size)


def _as_criterion_stores(values):
    """Array ``alpha`` / ``pos_weight`` as the single fit's loss module holds them.

    The :mod:`skfocal.losses` modules keep tensor-valued ``alpha`` and ``pos_weight`` as
    buffers of torch's default dtype (float32), whatever the training dtype; the members use
    the same rounded values, so that a float64 member equals its single fit to rounding.
    """
    if values is None:
        return None
    stored = torch.as_tensor(np.asarray(values, dtype=np.float64)).to(torch.get_default_dtype())
    return stored.double().numpy()


def _member_loss(plan):
    """The :class:`~skfocal._stacked.MemberLoss` of a plan's loss."""
    hyper = plan.loss_params
    alpha = plan.alpha
    if alpha is not None and not isinstance(alpha, numbers.Real):
        alpha = _as_criterion_stores(alpha)
    elif alpha is not None:
        alpha = float(alpha)
    pos_weight = _as_criterion_stores(plan.pos_weight)
    name = plan.loss.name
    if name == "margin":
        return MemberLoss(
            "margin",
            alpha=alpha,
            pos_weight=pos_weight,
            margin=float(hyper["margin"]),
            softness=None if hyper["softness"] is None else float(hyper["softness"]),
        )
    gamma = float(hyper["gamma"]) if name == "focal" else 0.0
    return MemberLoss(name, gamma=gamma, alpha=alpha, pos_weight=pos_weight)
