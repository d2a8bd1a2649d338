r"""BatchedGridSearchCV: scikit-learn's grid search, every candidate x fold trained at once.

:class:`BatchedGridSearchCV` is :class:`~sklearn.model_selection.GridSearchCV` through its
subclassing hook: ``fit`` is scikit-learn's own, and ``_run_search`` schedules the training
before it lets scikit-learn evaluate the candidates. The schedule:

1. the candidates x folds are planned (:func:`~skfocal._plan.make_plan`, exactly as each
   member's single fit plans itself, on its fold's rows or a Pipeline's transformed rows),
   ``"auto"`` resolved from the search's own sample count, which the whole ``fit`` sets for
   every fit inside it (:func:`~skfocal._auto.samples_for_auto`);
2. a candidate that differs from an earlier one only in ``class_prior`` is not trained
   again on that fold: it takes the earlier member's training under its own decisions
   (:func:`_training_key`, :func:`~skfocal._plan.with_class_prior`), unless early stopping
   scores decisions;
   plans that share a network shape and training schedule (:func:`group_key`) are trained
   together by the stacked engine (:class:`~skfocal._engines._stacked.StackedEngine`), one run per
   group -- or, with ``n_jobs`` workers, per chunk of a group, in joblib workers (a Dask
   cluster under ``joblib.parallel_backend("dask")``), beside the members that cannot be
   stacked, fitted one by one;
3. each trained member becomes a fitted :class:`~skfocal.FocalClassifier` (one for each
   candidate sharing it, each with its own copy of the network) through the one
   constructor of fitted classifiers (:func:`~skfocal._classifier.fitted_classifier`) and
   is *offered* (:mod:`skfocal._serving`) to the fit of the same parameters on the same data;
4. scikit-learn's evaluation then clones, fits and scores every candidate x fold as
   ``GridSearchCV`` does, on the same splits; each clone's ``fit`` takes its trained member
   instead of training again. ``cv_results_``, the refit and every attribute are
   scikit-learn's own.
"""

from __future__ import annotations

import copy
import itertools
import time
import warnings

import numpy as np
import sklearn
import torch
from joblib import effective_n_jobs
from sklearn.base import clone, is_classifier
from sklearn.model_selection import GridSearchCV, ParameterGrid, check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing, indexable
from sklearn.utils.metadata_routing import process_routing
from sklearn.utils.parallel import Parallel, delayed
from skorch.history import History

from ._auto import samples_for_auto
from ._classifier import FocalClassifier, fitted_classifier
from ._engines._members import Fitted
from ._engines._stacked import (
    StackedEngine,
    group_key,
    run_cost,
    split_members,
    why_not_stacked,
)
from ._engines._stacked._progress import EpochProgress
from ._plan import make_plan, with_class_prior
from ._serving import Served, data_key, fitted_state, offer, withdraw
from ._threads import current_setting, torch_threads


def _why_not_planned(estimator, X, fit_params):
    """Why a candidate is not trained beforehand (a sentence), or None when it can be."""
    if type(estimator) is Pipeline:
        if estimator.memory is not None:
            return "the Pipeline caches its steps (memory is set)"
        if fit_params:
            return "fit parameters are given to a Pipeline"
        estimator = estimator.steps[-1][1]
    elif any(name != "sample_weight" for name in fit_params):
        return "fit parameters other than sample_weight are given"
    if type(estimator) is not FocalClassifier:
        return f"the estimator is a {type(estimator).__name__}, not a FocalClassifier"
    if not _numeric_matrix(X):
        return "X is not a numeric 2-d array"
    return None


def _numeric_matrix(X):
    if hasattr(X, "tocsr") or isinstance(X, (dict, torch.Tensor)) or not hasattr(X, "__array__"):
        return False
    try:
        array = np.asarray(X)
    except (TypeError, ValueError):
        return False
    return array.ndim == 2 and array.dtype.kind in "fiub"


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


class _FixedSplits:
    """A cross-validator that yields the splits the search trained its members on."""

    def __init__(self, splits):
        self.splits = splits

    def split(self, X=None, y=None, groups=None, **params):
        return iter(self.splits)

    def get_n_splits(self, X=None, y=None, groups=None, **params):
        return len(self.splits)


class _Member:
    """One planned (candidate, split): its classifier, plan, data and place in the schedule.

    ``sharers``: the members of other candidates served from its training (see
    :func:`_training_key`).
    """

    def __init__(self, position, classifier, plan, data, y, sample_weight, rows, caught):
        self.position, self.classifier, self.plan = position, classifier, plan
        self.data, self.y, self.sample_weight = data, y, sample_weight
        self.rows, self.caught = rows, caught
        self.sharers = []


def _training_key(estimator, parameters, split_idx):
    """What decides the training of a candidate's member on a split: its split and its
    parameters but ``class_prior`` (a Pipeline's final step's).

    ``class_prior`` shifts the trained logits at decision time (the plan's posteriors) and
    nothing else, unless early stopping monitors a scorer: the scorer scores the validation
    decisions under ``class_prior``, which then decides the epoch kept. Members with equal
    keys whose first plan has no early-stopping scorer share one trained network.
    """
    prior = "class_prior"
    if type(estimator) is Pipeline:
        prior = f"{estimator.steps[-1][0]}__class_prior"
    with np.printoptions(threshold=np.inf):
        training = sorted((k, repr(v)) for k, v in parameters.items() if k != prior)
    return split_idx, tuple(training)


def _shared_results(result, members):
    """What each of ``members`` gets from the training ``result`` of the first one.

    The first takes ``result``; every other one its own copy of the trained net (module,
    optimizer, history: nothing done to one fitted classifier reaches another; about 1 ms
    for a member of the default MLP after 50 epochs) under its own plan's posterior.
    """
    yield result
    if result.error is not None:
        for _ in members[1:]:
            yield result
        return
    # a stacked plan has one phase (why_not_stacked): its posterior decides
    for member in members[1:]:
        (posterior,) = member.plan.posteriors
        net = _own_copy(result.net)
        net.predict_nonlinearity = posterior.proba
        yield Fitted(net, posterior, result.outputs)


def _own_copy(net):
    """A copy of a trained skorch net that shares no mutable state with it.

    Its attributes deep-copied together (one memo: the copy's optimizer steps the copy's
    module), its history by :func:`_history_copy` (a generic deep copy of 50 epochs' records
    was 0.6 of the 1.4 ms); skorch's pickling route (``copy.deepcopy(net)``, through
    ``torch.save``) gives the same at about three times the cost.
    """
    memo = {}
    history = vars(net).get("history_")
    if type(history) is History:  # most of the cost: copied as what it holds, dicts of scalars
        memo[id(history)] = _history_copy(history)
    copied = object.__new__(type(net))
    vars(copied).update(copy.deepcopy(vars(net), memo))
    return copied


_SCALARS = (int, float, bool, str, bytes, type(None), np.generic)


def _history_copy(history):
    """A copy of a skorch ``History`` sharing nothing mutable: its epochs' dicts (and their
    batches' dicts) copied, their scalar values shared, anything else deep-copied."""

    def value_copy(key, value):
        if isinstance(value, _SCALARS):
            return value
        if key == "batches" and type(value) is list:
            return [record(batch) for batch in value]
        return copy.deepcopy(value)

    def record(entry):
        return {key: value_copy(key, value) for key, value in entry.items()}

    return History(record(epoch) for epoch in history)


class _Schedule:
    """One ``fit`` of a :class:`BatchedGridSearchCV`: its data, splits and trained members."""

    def __init__(self, search, X, y, params):
        self.search = search
        self.X, self.y = indexable(X, y)
        # the count that resolves every member's "auto" (early_stopping, max_epochs)
        self.n_samples = self.X.shape[0] if hasattr(self.X, "shape") else len(self.X)
        self.params = params
        self.n_jobs = search.n_jobs
        self.n_workers = effective_n_jobs(search.n_jobs)
        self._X_float = None  # X as the stacked runs share it (see _X_host)
        self.token = object()
        self.served = {}  # (candidate, split) -> Served
        self._folds = {}  # split -> (X, y, sample_weight) of its training rows
        self._keys = {}  # id of a fold's (or block's) data -> (the data, its key)

    def fold(self, split_idx, train, fit_params):
        """The training rows of a split, taken once for every candidate."""
        if split_idx not in self._folds:
            sw = fit_params.get("sample_weight")
            self._folds[split_idx] = (
                _safe_indexing(self.X, train),
                _safe_indexing(self.y, train),
                None if sw is None else _safe_indexing(sw, train),
            )
        return self._folds[split_idx]

    def routed(self):
        """``(split_params, fit_params)`` routed as GridSearchCV routes them."""
        if sklearn.get_config().get("enable_metadata_routing", False):
            routed = process_routing(self.search, "fit", **self.params)
            return dict(routed.splitter.split), dict(routed.estimator.fit)
        params = dict(self.params)
        return {"groups": params.pop("groups", None)}, params

    def splits(self):
        search = self.search
        split_params, _ = self.routed()
        cv = check_cv(search.cv, self.y, classifier=is_classifier(search.estimator))
        return list(cv.split(self.X, self.y, **split_params))

    # -- planning --------------------------------------------------------------------------
    def train(self, candidates, splits):
        """Train every member that can be trained beforehand and offer it to its fit."""
        search = self.search
        _, fit_params = self.routed()
        base = clone(search.estimator)
        reasons, planned, singles = {}, [], []
        blocks, trained = {}, {}  # trained: training key -> the member trained for it
        for cand_idx, parameters in enumerate(candidates):
            estimator = clone(base).set_params(**clone(parameters, safe=False))
            reason = _why_not_planned(estimator, self.X, fit_params)
            if reason is not None:
                reasons.setdefault(reason, parameters)
                continue
            for split_idx, (train, _) in enumerate(splits):
                position, key = (
                    (cand_idx, split_idx),
                    _training_key(estimator, parameters, split_idx),
                )
                if key in trained:  # differs only in class_prior from a member trained
                    self._share(trained[key], position, base, parameters)
                    continue
                member = self._plan(position, base, parameters, train, fit_params, blocks)
                if isinstance(member, str):
                    reasons.setdefault(member, parameters)
                    if type(estimator) is FocalClassifier:
                        singles.append((position, parameters, train))
                elif member is not None:
                    planned.append(member)
                    if member.plan.scorer is None:  # else its class_prior decides its epochs
                        trained[key] = member
        for reason, parameters in reasons.items():
            warnings.warn(
                f"BatchedGridSearchCV fits candidates such as {parameters!r} one by one "
                f"(not stacked) because {reason}.",
                UserWarning,
                stacklevel=5,
            )
        singles = self._single_jobs(base, singles, fit_params) if self.n_workers > 1 else []
        self._run(self._chunks(planned), singles)

    def _plan(self, position, base, parameters, train, fit_params, blocks):
        """Plan one member: a :class:`_Member`, a reason to fit it alone, or None (failed)."""
        scored = clone(base).set_params(**clone(parameters, safe=False))
        estimator, pipeline = _final_step(scored)
        X_train, y_train, sw = self.fold(position[1], train, fit_params)
        source = "X"
        if pipeline is not None:  # preprocessing fitted once per fold (and its parameters)
            source = (_preprocessing_key(pipeline, parameters), position[1])
            if source not in blocks:
                preprocessing = clone(pipeline[:-1])
                try:
                    block = preprocessing.fit_transform(X_train, y_train)
                except Exception:  # noqa: BLE001 -- the search's own fit records it
                    block = None
                blocks[source] = block
            X_train = blocks[source]
            if X_train is None:
                return None
            if not isinstance(X_train, np.ndarray) or X_train.dtype.kind not in "fiub":
                return "the pipeline's preprocessing does not give a numeric ndarray"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                estimator._validate_params()
                plan, _ = make_plan(estimator, X_train, y_train, sw, auto_samples=self.n_samples)
            except Exception:  # noqa: BLE001 -- its fit fails the same way in the search
                return None
        reason = why_not_stacked(plan)
        if reason is not None:
            return reason
        rows = train if source == "X" else None
        return _Member(position, estimator, plan, X_train, y_train, sw, (source, rows), caught)

    def _share(self, trained, position, base, parameters):
        """A member served from ``trained``'s training (its own decisions), or None (failed)."""
        estimator, _ = _final_step(clone(base).set_params(**clone(parameters, safe=False)))
        try:
            estimator._validate_params()
            plan = with_class_prior(trained.plan, estimator)
        except Exception:  # noqa: BLE001 -- its fit fails the same way in the search
            return None
        member = _Member(position, estimator, plan, *_data_of(trained), trained.caught)
        trained.sharers.append(member)
        return member

    # -- training ---------------------------------------------------------------------------
    def _chunks(self, members):
        """The stacked runs: groups of one network shape, split into chunks for the workers.

        ``[(label, [members])]``, costliest first. Each group gets a share of the workers in
        proportion to its cost (:func:`~skfocal._engines._stacked.run_cost`) and is split
        into that many chunks at most (:func:`~skfocal._engines._stacked.split_members`).
        """
        groups = {}
        for member in members:
            key = (group_key(member.plan), member.plan.device)
            groups.setdefault(key, []).append(member)
        groups = list(groups.values())
        costs = [run_cost([m.plan for m in group]) for group in groups]
        total = sum(costs)
        runs = []
        for g, (group, cost) in enumerate(zip(groups, costs, strict=True)):
            share = max(1, round(self.n_workers * cost / total))
            parts = split_members(len(group), share, group[0].plan.device)
            for c, positions in enumerate(parts):
                label = f"group {g + 1}/{len(groups)}"
                if len(parts) > 1:
                    label += f", chunk {c + 1}/{len(parts)}"
                chunk = [group[i] for i in positions]
                runs.append((run_cost([m.plan for m in chunk]), label, chunk))
        runs.sort(key=lambda run: -run[0])  # the longest first: the workers finish together
        return [(label, chunk) for _, label, chunk in runs]

    def _run(self, chunks, singles):
        """Train the stacked chunks and the single fits; offer every result to its fit.

        In this process when one worker is asked for (or one run is all there is), else
        through joblib with ``n_jobs`` workers (joblib's backend: processes by default, a
        Dask cluster under ``joblib.parallel_backend("dask")``). A worker trains its chunk
        as one stacked model and returns the trained members; the members are built into
        fitted classifiers and offered here.
        """
        verbose = self.search.verbose
        setting = current_setting()  # a torch_threads() block reaches the workers too
        in_process = self.n_workers == 1 or len(chunks) + len(singles) <= 1
        if verbose > 0 and chunks:
            where = "in this process" if in_process else f"on {self.n_workers} workers"
            print(
                f"[BatchedGridSearchCV] training {sum(len(c) for _, c in chunks)} members in "
                f"{len(chunks)} stacked run(s), {len(singles)} one by one, {where}",
                flush=True,
            )

        def chunk_arguments():
            for label, chunk in chunks:
                shared, rows = self._shared_data(chunk)
                progress = EpochProgress(label, verbose) if verbose > 0 else None
                yield [m.plan for m in chunk], shared, rows, setting, progress

        if in_process:  # one run after the other, each offered before the next one's data
            for (_, chunk), arguments in zip(chunks, chunk_arguments(), strict=True):
                self._offer_chunk(chunk, *_train_chunk(*arguments))
            return
        tasks = itertools.chain(
            (delayed(_train_chunk)(*arguments) for arguments in chunk_arguments()),
            (
                delayed(_fit_single)(est, X, y, sw, setting, self.n_samples)
                for *_, est, X, y, sw in singles
            ),
        )
        results = Parallel(
            n_jobs=self.n_jobs, pre_dispatch=self.search.pre_dispatch, verbose=verbose
        )(tasks)
        for (_, chunk), (fitted, seconds) in zip(chunks, results, strict=False):
            self._offer_chunk(chunk, fitted, seconds)
        for (position, estimator, X, y, sw), served in zip(
            singles, results[len(chunks) :], strict=True
        ):
            member = _Member(position, estimator, None, X, y, sw, None, ())
            self._offer(position, estimator, member, served)

    def _offer_chunk(self, chunk, fitted, seconds):
        """Offer each trained member to its fit, and to the fits of the members sharing it."""
        share = seconds / len(chunk)
        for trained, result in zip(chunk, fitted, strict=True):
            members = [trained, *trained.sharers]
            results = _shared_results(result, members)
            for member, each in zip(members, results, strict=True):
                served = Served(caught=member.caught, fit_time=share / len(members))
                if each.error is not None:
                    served.error = each.error
                else:
                    estimator = fitted_classifier(member.classifier, member.plan, each, member.data)
                    served.state = fitted_state(estimator)
                self._offer(member.position, member.classifier, member, served)

    def _shared_data(self, group):
        """One host matrix every member of ``group`` trains on, and each member's rows in it.

        The search's ``X`` (as scikit-learn's validation converts it) when members train on
        its rows, followed by the blocks of transformed rows (one per Pipeline preprocessing
        and fold) that members use.
        """
        parts, offsets, n_rows = [], {}, 0
        if any(m.rows[0] == "X" for m in group):
            X_host = self._X_host()
            parts.append(X_host)
            n_rows = len(X_host)
        rows = []
        for member in group:
            source, train = member.rows
            if source == "X":
                rows.append(train)
                continue
            if source not in offsets:
                offsets[source] = n_rows
                block = np.asarray(member.data)
                parts.append(block)
                n_rows += len(block)
            rows.append(offsets[source] + np.arange(len(member.data)))
        dtype = np.result_type(*parts)
        shared = parts[0] if len(parts) == 1 else np.concatenate([p.astype(dtype) for p in parts])
        return shared, rows

    def _X_host(self):
        """The search's ``X`` as one float ndarray (converted once, shared by every run)."""
        if self._X_float is None:
            X_host = np.asarray(self.X)
            if X_host.dtype not in (np.float32, np.float64):
                X_host = X_host.astype(np.float32)
            self._X_float = X_host
        return self._X_float

    def _single_jobs(self, base, singles, fit_params):
        """``(position, estimator, X, y, sample_weight)`` of each member fitted one by one."""
        jobs = []
        for position, parameters, train in singles:
            estimator = clone(base).set_params(**clone(parameters, safe=False))
            jobs.append((position, estimator, *self.fold(position[1], train, fit_params)))
        return jobs

    def _offer(self, position, estimator, member, served):
        # members of one fold (or block) share its data: hash it once
        cached = self._keys.get(id(member.data))
        if cached is None or cached[0] is not member.data:
            cached = (member.data, data_key(member.data, member.y, member.sample_weight))
            self._keys[id(member.data)] = cached
        if offer(self.token, estimator, cached[1], served):
            self.served[position] = served

    # -- after scikit-learn's evaluation ----------------------------------------------------
    def report_fit_times(self, results, n_splits):
        """``mean_fit_time`` / ``std_fit_time`` of candidates whose every fit was served.

        A served fit takes a trained member (a few milliseconds); its time is the member's
        share of the run that trained it.
        """
        for cand_idx in range(len(results["params"])):
            served = [self.served.get((cand_idx, s)) for s in range(n_splits)]
            if all(s is not None and s.taken for s in served):
                times = np.array([s.fit_time for s in served])
                results["mean_fit_time"][cand_idx] = times.mean()
                results["std_fit_time"][cand_idx] = times.std()


def _data_of(member):
    """``(data, y, sample_weight, rows)`` a member trains on."""
    return member.data, member.y, member.sample_weight, member.rows


def _train_chunk(plans, X, rows, threads, progress):
    """Train ``plans`` as one stacked model (in a joblib worker): ``([Fitted], seconds)``."""
    start = time.perf_counter()
    with torch_threads(threads):
        fitted = StackedEngine(plans[0].device, plans[0].dtype).fit(
            plans, X, rows=rows, progress=progress
        )
    return fitted, time.perf_counter() - start


def _fit_single(estimator, X, y, sample_weight, threads, n_samples):
    """Fit one member (in a joblib worker, "auto" resolved from the search's ``n_samples``):
    its :class:`Served` state or error."""
    start = time.perf_counter()
    with (
        warnings.catch_warnings(record=True) as caught,
        torch_threads(threads),
        samples_for_auto(n_samples),
    ):
        warnings.simplefilter("always")
        try:
            kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
            estimator.fit(X, y, **kwargs)
        except Exception as exc:  # noqa: BLE001 -- served: the search's fit raises it
            return Served(error=exc, caught=caught, fit_time=time.perf_counter() - start)
    return Served(fitted_state(estimator), caught=caught, fit_time=time.perf_counter() - start)


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
    differently). With early stopping each member holds out its own validation part, stops
    on its own and keeps its best epoch, like its single fit. The data are on the device
    once; members gather their minibatches by index.

    ``early_stopping="auto"`` and ``max_epochs="auto"`` (the defaults) are resolved once, from
    the number of samples given to ``fit``, for every fold member, every candidate fitted one
    by one and the refit: with :math:`n` above 10,000 all of them stop early, even where a
    training fold of :math:`0.8\,n` alone would not (a plain ``GridSearchCV`` resolves them in
    each fit, from the fold's own rows).

    The search itself is scikit-learn's: its ``fit`` clones, fits and scores every
    candidate x fold on the splits of ``cv``, and refits the best. The members are trained
    beforehand, and each clone's ``fit`` takes the member trained for its parameters on its
    fold's data, so scores, ``cv_results_`` and the refit are ``GridSearchCV``'s own.

    Candidates that differ only in ``class_prior`` (a Pipeline's final step's) share one
    trained member per fold: ``class_prior`` acts on decisions alone -- the decision scores
    are the log posterior recovered from the trained logits plus the log shift :math:`s` of
    the candidate's prior -- so the member is trained once and each candidate's fitted classifier
    is built from it under its own shift (with its own copy of the network: nothing done to
    one reaches another), then scored by scikit-learn as usual. A grid times four
    ``class_prior`` values trains what the grid alone trains. Where early stopping monitors
    a ``scoring`` metric, that metric scores the validation decisions under ``class_prior``,
    which then decides the epoch kept: such candidates are trained separately.

    Candidates that cannot be stacked (a user ``module``, ``accelerator``, ``callbacks``,
    ``warmup_epochs``, a loss without a stacked form, another optimizer, a sampler that
    synthesises rows such as SMOTE, non-tabular ``X``, fit parameters other than
    ``sample_weight``, a cached Pipeline, an estimator that is neither a ``FocalClassifier``
    nor a :class:`~sklearn.pipeline.Pipeline` ending in one -- a
    :class:`~skfocal.TunedDecisionClassifierCV` too, whose fits each stack their own inner
    folds) are fitted one by one, with a
    warning that says why: ``FocalClassifier`` candidates through joblib beforehand when
    ``n_jobs`` asks for workers, the others by scikit-learn's evaluation, which runs in this
    process. A Pipeline's preprocessing is fitted per fold (once per setting of its
    parameters) and its final classifiers are stacked on the transformed training rows.

    A member whose loss or weights become non-finite gets ``error_score`` (as its failing
    single fit would) while the other members go on.

    Parameters
    ----------
    estimator, param_grid, scoring, refit, cv, pre_dispatch, error_score, return_train_score
        As in :class:`sklearn.model_selection.GridSearchCV`.
    n_jobs : int, default=None
        Number of joblib workers that train the stacked models and the one-by-one fits
        beforehand (None: 1 unless in a :func:`joblib.parallel_backend` context; -1: all
        processors). With several workers a large group is split into chunks of members,
        each trained by one worker as one stacked model (about eight members or more per
        chunk on a CPU; a GPU group is not split): see :ref:`scaling`. The results do not
        depend on it. scikit-learn's evaluation of the trained members runs in this process.
    verbose : int, default=0
        0 prints nothing. 1: each stacked run reports its epochs (members still training,
        stopped early and failed, time elapsed and left) at most once a second and when a
        member stops -- from the worker that trains it, with joblib's progress here -- then
        scikit-learn's own messages follow; 2: every epoch.

    Attributes
    ----------
    n_splits_, refit_time_, multimetric_, classes_, n_features_in_, feature_names_in_
        As in :class:`sklearn.model_selection.GridSearchCV`.
    cv_results_, best_estimator_, best_score_, best_params_, best_index_, scorer_
        As in :class:`sklearn.model_selection.GridSearchCV`. For candidates whose members
        were all trained beforehand, ``mean_fit_time`` / ``std_fit_time`` report each
        member's share of the run that trained it (for a stacked model: its wall time --
        planning, training and building the fitted members -- divided by its number of
        members; a member shared by :math:`k` candidates that differ only in
        ``class_prior``: :math:`1/k` of its share each); ``score_time`` is measured per
        member by scikit-learn.

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

    def fit(self, X, y=None, **params):
        """Run fit with all sets of parameters (see :meth:`GridSearchCV.fit`).

        scikit-learn's ``fit``, with the members trained beforehand by :meth:`_run_search`
        (stacked runs and one-by-one fits on ``n_jobs`` workers). Its evaluation loop then
        runs in this process (the trained members are offered here).

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
        schedule = self.__dict__["_schedule"] = _Schedule(self, X, y, params)
        self.n_jobs = 1  # scikit-learn's evaluation takes the members trained in this process
        try:
            # "auto" resolved from X for every fit inside: members, unserved clones, refit
            with samples_for_auto(schedule.n_samples):
                super().fit(X, y, **params)
        finally:
            self.n_jobs = schedule.n_jobs
            self.__dict__.pop("_schedule", None)
            withdraw(schedule.token)
        schedule.report_fit_times(self.cv_results_, self.n_splits_)
        return self

    def _run_search(self, evaluate_candidates, callback_ctx=None):
        """Train the members of every candidate x split, then let scikit-learn evaluate them.

        ``callback_ctx``: scikit-learn 1.9's callback context, handed on (older releases
        pass none).
        """
        schedule = self._schedule
        candidates = list(ParameterGrid(self.param_grid))
        splits = schedule.splits()
        schedule.train(candidates, splits)
        fixed = _FixedSplits(splits)

        def evaluate(candidate_params, cv=None, **more):
            return evaluate_candidates(candidate_params, cv=fixed, **more)

        if callback_ctx is None:
            super()._run_search(evaluate)
        else:
            super()._run_search(evaluate, callback_ctx=callback_ctx)
