r"""FocalClassifier: a skorch-backed scikit-learn classifier with imbalance hyperparameters."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.metrics import get_scorer_names
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _inputs
from ._engines import SkorchEngine
from ._engines._net import PREDICT_BATCH_ROWS, predict_logits
from ._loss_specs import LOSSES
from ._plan import make_plan
from ._posterior import CLASS_PRIORS
from ._sampling import SAMPLER_CONSTRAINT
from ._serving import param_names, take_served
from ._threads import module_macs, threads_for, tokens_per_row


class FocalClassifier(ClassifierMixin, BaseEstimator):
    r"""Neural-network classifier whose class-imbalance handling is a set of hyperparameters.

    A small PyTorch network (a default MLP, or your own ``module``) is trained by an internal
    skorch net on focal, cross-entropy or margin loss, with scikit-learn's ``class_weight``
    vocabulary, per-class ``alpha``, on-device minibatch ``sampler`` s, a prior-initialised
    output bias and optional early stopping on any scikit-learn scorer. Binary targets use one
    logit and a sigmoid, multiclass targets a softmax, multilabel indicator targets one
    sigmoid per label.

    Parameters
    ----------
    loss : str or loss object, default="focal"
        One of ``"focal"``, ``"cross_entropy"``, ``"margin"``, ``"ldam"``,
        ``"logit_adjusted"``, ``"poly"``, ``"asymmetric"``: the training loss from
        :mod:`skfocal.losses` (sigmoid version for binary and multilabel targets, softmax
        version for multiclass targets). A name takes the published
        defaults; a loss object (:class:`~skfocal.LDAM`, :class:`~skfocal.LogitAdjusted`,
        :class:`~skfocal.Poly1`, :class:`~skfocal.Asymmetric`) sets its own hyperparameters,
        searchable as ``loss__<name>``. ``gamma`` applies to focal and poly-1, ``alpha`` to
        all.
    gamma : float, default=2.0
        Focusing parameter of the focal loss, :math:`\gamma \ge 0`.
    alpha : None, float, "balanced", array-like or dict, default=None
        Class factor :math:`\alpha_t` of the loss. A float in [0, 1] (binary and multilabel)
        weights the positive class ``classes_[1]`` by ``alpha`` and the negative one by
        ``1 - alpha``. ``"balanced"`` gives both binary classes the same total weight
        (:math:`\alpha = n_0 / n`) and multiclass weights :math:`n / (C\,n_c)`. An array-like
        has one weight per class (per label for multilabel); a dict is keyed by class label.
    margin : float, default=0.6
        Probability above which the margin loss stops training on a sample, in (0, 1).
    softness : float or None, default=None
        Slope of the soft margin gate (None: hard truncation).
    class_weight : None, "balanced", dict or ClassBalanced, default=None
        scikit-learn's class weights, computed in ``fit`` from the data given:
        ``"balanced"`` is ``n_samples / (n_classes * np.bincount(y))`` (weighted by
        ``sample_weight`` when given); a dict maps class labels to weights (missing labels
        get 1); :class:`~skfocal.ClassBalanced` gives class-balanced weights (Cui et al.,
        2019). Multiplied into the per-sample weights. For multilabel targets ``"balanced"``
        sets a per-label ``pos_weight = n_neg / n_pos``.
    sampler : None, "oversample", "sqrt" or imbalanced-learn sampler, default=None
        How training minibatches are drawn (training part only, seeded, never at predict
        time): uniform shuffling, class-balanced draws, draws with class probability
        :math:`\propto \sqrt{n_c}`, or the resampling of an imbalanced-learn sampler (by
        ``sample_indices_`` when it has them, so no row is copied; ``RandomOverSampler``
        without ``shrinkage`` and ``RandomUnderSampler`` are fitted on the labels alone, so
        not even imbalanced-learn's own resampled copy of X is made).
    bias_init : {"prior", "zero"}, default="prior"
        ``"prior"`` sets the output bias to the log class prior the loss sees (the class
        frequencies under the sampler, weighted by ``class_weight`` and ``sample_weight``):
        :math:`b = -\log((1 - \pi)/\pi)` for a binary logit, :math:`\log \pi_c` (centred) for a
        softmax. The network then starts at the best constant model instead of spending its
        first steps learning the class ratio, which on very imbalanced data otherwise
        dominates early training (Lin et al., 2017). ``"zero"`` sets it to 0.
    warmup_epochs : int, default=0
        Number of initial epochs trained with cross-entropy (same ``alpha`` and weights)
        before switching to ``loss``.
    class_prior : {"training", "data", "balanced"}, array-like or dict, default="training"
        The class prior that ``predict_proba``, ``decision_function`` and ``predict`` assume.
        Probabilities are first recovered from the logits through the inverse link of the
        loss (focal loss squeezes them toward 1/2; the link undoes it, keeping the argmax
        and, for binary and multilabel targets, the ranking), then shifted to this prior:

        * ``"training"``: the emphasis the loss trained with is kept -- scikit-learn's own
          ``class_weight`` semantics (balanced weights give balanced decisions);
        * ``"data"``: the (sample-weighted) class frequencies of the training data, so that
          ``predict_proba`` estimates :math:`P(y \mid x)` as the data has it, with the
          emphasis of ``alpha``, ``class_weight`` and ``sampler`` undone;
        * ``"balanced"``: equal priors, so that ``predict`` maximises balanced accuracy;
        * an array-like (or dict keyed by label) of priors, e.g. a known deployment base rate
          (multilabel: one positive rate in (0, 1) per label).

        The link is that of the loss in force at the kept epoch (after warm-up: ``loss``; an
        early-stopped fit restored within warm-up: cross-entropy's). The hard margin loss has
        no inverse link, nor has the soft one past
        :func:`~skfocal.losses.soft_margin_link_is_invertible`: their raw probabilities are
        used, shifted the same way. Early stopping on a ``scoring`` metric scores these same
        outputs. See the user guide, "Probabilities and decisions".
    module : None, nn.Module class, callable or nn.Module instance, default=None
        The network, returning logits of shape ``(N, n_outputs)`` (``(N,)`` accepted for
        binary) as a tensor or as a mapping with a ``logits`` entry (a Hugging Face
        ``ModelOutput``); ``n_outputs`` is 1 for a binary target and the number of classes
        or labels otherwise (a Hugging Face model's ``num_labels``). None builds an MLP. A
        class, or a callable returning an ``nn.Module`` (e.g.
        ``functools.partial(MyNet, width=128)``), is called with ``n_features`` (not for a
        dict ``X``) and/or ``n_outputs`` if its signature accepts them (else with no
        argument); an instance is deep-copied at every fit. A user module receives integer
        ``X`` as int64 (token ids stay exact) and the values of a dict ``X`` as keyword
        arguments (see :ref:`text`).
    hidden_layer_sizes : tuple of int, default=(64,)
        Hidden layer widths of the default MLP.
    dropout : float, default=0.0
        Dropout probability after every hidden layer of the default MLP.
    optimizer : torch optimizer class, default=torch.optim.AdamW
        Optimizer; receives ``lr`` and, if it accepts it, ``weight_decay``. When it takes a
        ``fused`` argument (AdamW, Adam, SGD, Adagrad, ...) and the device and dtype support
        the fused step, ``fused=True`` is passed: one kernel updates all parameters (on a CPU
        about 2.5x faster than the single- or multi-tensor step for the default MLP, see
        ``benchmarks/bench_fit.py --defaults``; torch picks a fast step by default only on
        GPUs).
        Pass ``functools.partial(torch.optim.AdamW, fused=False)`` (or any ``foreach=``) to
        keep torch's own choice. The fused step rounds differently from the others (by about
        1e-7 relative in float32), so results differ from a non-fused run in the last digits.
        When no callback listens to per-batch events, the training loop calls torch's fused
        Adam/AdamW kernel itself, on the optimizer's own state (on a CPU: the same update bit
        for bit, without the Python around it in ``Optimizer.step``); other
        optimizers' ``step`` is called as is, and L-BFGS and optimizers from outside
        ``torch.optim`` get skorch's step with its closure.
    lr : float, default=3e-3
        Learning rate. 3e-3 rather than Adam's customary 1e-3: with the default 50 epochs of
        batch 256, 1e-3 leaves small tables under-trained (average precision 0.524 against
        0.530 over the ten sets of the benchmarks, balanced accuracy 0.657 against 0.675),
        while 1e-2 lowers average precision (0.519); see the benchmarks page.
    weight_decay : float, default=1e-2
        Weight decay of the optimizer (``AdamW``'s own default).
    batch_size : int, default=256
        Training minibatch size (capped at the number of training rows).
    max_epochs : int or "auto", default="auto"
        Maximum number of epochs (one epoch draws as many rows as there are training rows).
        ``"auto"``: 50 without early stopping, 200 with it (a cap that patience reaches
        first, so that stopping, not the budget, ends a large fit).
    early_stopping : bool or "auto", default="auto"
        Hold out a stratified, seeded ``validation_fraction`` of the data, stop when
        ``scoring`` has not improved for ``n_iter_no_change`` epochs and restore the best
        weights. ``"auto"`` (scikit-learn's rule for
        :class:`~sklearn.ensemble.HistGradientBoostingClassifier`): on when ``fit`` is given
        more than 10,000 samples, off otherwise, so that small data train the fixed 50 epochs
        they always did and large data stop on the validation loss. On the 100,968-row
        ``fars`` set and its binarisation, which 50 epochs overfit, stopping raised average
        precision by 5-7 % and lowered log-loss by 15-21 % at 0.19-0.36x the fit time; on two
        synthetic sets of 120,000 rows, which 50 epochs do not overfit, it trained as long or
        longer for the same quality (``benchmarks/bench_defaults.py``; user guide,
        :ref:`early_stopping_auto`). :class:`~skfocal.BatchedGridSearchCV` resolves
        ``"auto"`` once, from the data given to its ``fit``, for every fold member and the
        refit; a plain :class:`~sklearn.model_selection.GridSearchCV` resolves it in each
        fit, from the fold's own rows. The resolved values are ``early_stopping_`` and
        ``max_epochs_``. An epoch improves when its score is better, or equal with a lower
        validation loss, so that a score which saturates (average precision of one held-out
        positive is 1.0 once it is ranked first) does not stop training while the loss still
        falls; the best epoch is the last that improved. A ranking ``scoring``
        (``"average_precision"``, ``"roc_auc"`` and its variants) on fewer than 5 validation
        rows of a class warns: in ``benchmarks/bench_early_stopping.py`` such early stopping
        kept a network below 0.9 of the best epoch's test average precision in 6 to 15 runs
        of 20 (see the benchmarks page).
    validation_fraction : float, default=0.1
        Share of the data held out for early stopping.
    n_iter_no_change : int, default=10
        Patience of early stopping, in epochs.
    scoring : None, str or callable, default=None
        Early-stopping metric: None for the validation loss, or a scikit-learn scorer name
        (e.g. ``"average_precision"``) or scorer callable, computed once per epoch from the
        validation outputs. Only used when early stopping is on: ``fit`` warns when it is
        given with early stopping off (``early_stopping=False``, or ``"auto"`` on 10,000
        samples or fewer), where it would have no effect.
    weight_averaging : None or float, default=None
        Keep an exponential moving average of the weights over about this many epochs, and
        use it -- not the weights of the last step -- for validation, for early stopping's
        choice of the best epoch and as the fitted network: after every training step

        .. math::

            \bar w \leftarrow \bar w + \frac{1}{h S}\,(w - \bar w)

        from the initial weights, with :math:`h` = ``weight_averaging`` and :math:`S` the
        steps of an epoch (:math:`hS` below 1 counts as 1: no averaging). The average smooths
        the noise of the last steps out of the network and out of the validation loss that
        early stopping reads. On the 100,968-row ``fars`` set (3-fold, early stopping on,
        ``weight_averaging=3``) it raised AP from 0.583 to 0.596 (8 classes; boosted trees
        0.590) and from 0.338 to 0.362 (binarised), with log-loss as low or lower, stopping
        4-5 epochs later (1.1-1.3x the fit time); on two synthetic sets that 50 epochs
        under-train it trained longer for better models (``benchmarks/bench_defaults.py``;
        user guide, :ref:`weight_averaging`). None: the trained weights.
        :class:`~skfocal.BatchedGridSearchCV` keeps such candidates stacked (each member
        keeps its own average; equal to its single fit in float64); not with an
        ``accelerator``.
    device : {"cpu", "cuda", "auto"} or str, default="cpu"
        Training device (any torch device string). ``"auto"`` uses the device of a CUDA
        tensor ``X``, else CUDA when available, else the CPU.
    dtype : {"float32", "float64"}, default="float32"
        Floating-point precision of training and inference.
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation, dropout, the validation split and the sampler;
        with an int, CPU training is bit-for-bit reproducible.
    verbose : int, default=0
        0 is silent; 1 prints skorch's epoch table (with the early-stopping metric); 2 also
        shows a progress bar.
    callbacks : None or list, default=None
        Extra skorch callbacks (instances or ``(name, callback)`` tuples), deep-copied at fit.
        A callback that overrides ``on_batch_begin``, ``on_batch_end`` or
        ``on_grad_computed`` gets every batch event, with skorch's arguments (the epoch then
        runs skorch's per-batch path); otherwise the epoch is a lean loop of plain steps and
        the batch losses enter the history at the end of the epoch.
    accelerator : None or accelerate.Accelerator, default=None
        Train through Hugging Face ``accelerate`` (mixed precision, device placement,
        data-parallel training): the internal net then mixes in
        :class:`skorch.hf.AccelerateMixin`. Requires the optional ``accelerate`` package.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (``arange(n_labels)`` for a multilabel target).
    n_features_in_ : int
        Number of features seen in ``fit`` (not set for a dict ``X``).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` has string column names.
    net_ : skorch.NeuralNet
        The fitted internal skorch net; ``net_.history`` holds the per-epoch record and
        ``net_.module_`` the trained network (its outputs on new data:
        :meth:`predict_logits`).
    n_iter_ : int
        Number of epochs trained.
    early_stopping_ : bool
        Whether early stopping was on in this fit (``early_stopping``, ``"auto"`` resolved).
    max_epochs_ : int
        The epoch budget of this fit (``max_epochs``, ``"auto"`` resolved).
    class_weight_ : ndarray of shape (n_classes,) or None
        Resolved class weights (multilabel ``"balanced"``: per-label ``pos_weight``).
    alpha_ : None, float or ndarray
        Resolved ``alpha`` as handed to the loss.
    class_prior_ : ndarray
        The class prior the outputs assume (multilabel: the positive rate of each label):
        for ``"training"`` the emphasised training distribution's.
    device_ : torch.device
        Device the network lives on.

    See Also
    --------
    skfocal.losses.focal_loss : The softmax focal loss.
    skfocal.losses.binary_focal_loss_with_logits : The sigmoid focal loss.

    Notes
    -----
    With per-sample weights :math:`s_i = \mathrm{sample\_weight}_i\,
    \mathrm{class\_weight}_{y_i}` and per-sample loss :math:`\ell_i` (which already contains
    the factor :math:`\alpha_{y_i}`), the training objective is

    .. math::

        \mathcal{L} = \frac{\sum_i s_i\,\ell_i}{\sum_i s_i},

    estimated on every minibatch :math:`B` by :math:`\frac{1}{|B|}\sum_{i \in B}
    \tilde s_i \ell_i` with :math:`\tilde s_i = s_i / \bar s` (mean 1 over the training rows).
    ``sampler`` changes the distribution of the rows in :math:`B`, not :math:`s_i`; hence a
    balancing sampler combined with ``"balanced"`` weights balances twice, and a
    ``UserWarning`` says so. Multilabel losses are averaged over the labels of each sample.

    References
    ----------
    .. [1] T.-Y. Lin, P. Goyal, R. Girshick, K. He and P. Dollár, "Focal Loss for Dense
       Object Detection", ICCV 2017.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skfocal import FocalClassifier
    >>> X, y = make_classification(n_samples=300, weights=[0.9], random_state=0)
    >>> clf = FocalClassifier(gamma=2.0, alpha="balanced", max_epochs=20, random_state=0)
    >>> clf.fit(X, y).predict_proba(X[:2]).shape
    (2, 2)
    >>> clf.classes_
    array([0, 1])
    """

    _parameter_constraints: dict = {
        "loss": [StrOptions(set(LOSSES)), HasMethods(["criterion", "get_params"])],
        "gamma": [Interval(Real, 0, None, closed="left")],
        "alpha": [
            None,
            Interval(Real, 0, 1, closed="both"),
            StrOptions({"balanced"}),
            "array-like",
            dict,
        ],
        "margin": [Interval(Real, 0, 1, closed="neither")],
        "softness": [None, Interval(Real, 0, None, closed="left")],
        "class_weight": [None, StrOptions({"balanced"}), dict, HasMethods(["weights"])],
        "sampler": SAMPLER_CONSTRAINT,
        "bias_init": [StrOptions({"prior", "zero"})],
        "warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "module": [None, callable],
        "hidden_layer_sizes": ["array-like"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "optimizer": [callable],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "scoring": [None, StrOptions(set(get_scorer_names())), callable],
        "weight_averaging": [None, Interval(Real, 0, None, closed="neither")],
        "device": [str, torch.device],
        "dtype": [StrOptions({"float32", "float64"})],
        "random_state": ["random_state"],
        "class_prior": [StrOptions(set(CLASS_PRIORS)), "array-like", dict],
        "verbose": ["verbose"],
        "callbacks": [None, list],
        "accelerator": [None, HasMethods(["prepare"])],
    }

    def __init__(
        self,
        *,
        loss="focal",
        gamma=2.0,
        alpha=None,
        margin=0.6,
        softness=None,
        class_weight=None,
        sampler=None,
        bias_init="prior",
        warmup_epochs=0,
        class_prior="training",
        module=None,
        hidden_layer_sizes=(64,),
        dropout=0.0,
        optimizer=torch.optim.AdamW,
        lr=3e-3,
        weight_decay=1e-2,
        batch_size=256,
        max_epochs="auto",
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        scoring=None,
        weight_averaging=None,
        device="cpu",
        dtype="float32",
        random_state=None,
        verbose=0,
        callbacks=None,
        accelerator=None,
    ):
        self.loss = loss
        self.gamma = gamma
        self.alpha = alpha
        self.margin = margin
        self.softness = softness
        self.class_weight = class_weight
        self.sampler = sampler
        self.bias_init = bias_init
        self.warmup_epochs = warmup_epochs
        self.class_prior = class_prior
        self.module = module
        self.hidden_layer_sizes = hidden_layer_sizes
        self.dropout = dropout
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.scoring = scoring
        self.weight_averaging = weight_averaging
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.accelerator = accelerator

    def get_params(self, deep=True):
        """Get parameters for this estimator: scikit-learn's ``get_params``.

        The parameters' names are read from the constructor's signature once per class
        (scikit-learn reads the signature at every call, a search's largest cost per
        candidate besides training and scoring).

        Parameters
        ----------
        deep : bool, default=True
            Also the parameters of contained objects that have ``get_params`` (e.g. a
            ``sampler``), as ``<name>__<parameter>``.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        out = {}
        for key in param_names(self):
            value = getattr(self, key)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((key + "__" + k, val) for k, val in value.get_params().items())
            out[key] = value
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.array_api_support = True
        return tags

    # ------------------------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train the network on ``X``, ``y``.

        Parameters
        ----------
        X : array-like, torch.Tensor or dict of shape (n_samples, n_features)
            Training data; a torch tensor stays on its device (and is used in place when it
            already has the training device and dtype). With a ``module``, integer ``X``
            reaches it as int64 and a dict of equal-length arrays or tensors (a tokenizer's
            ``BatchEncoding``, skorch's ``SliceDict``) as keyword arguments.
        y : array-like or torch.Tensor of shape (n_samples,) or (n_samples, n_labels)
            Class labels of any type, or a multilabel 0/1 indicator matrix.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative per-sample weights, multiplied with ``class_weight``.

        Returns
        -------
        self : FocalClassifier
            The fitted classifier.

        Examples
        --------
        >>> import numpy as np
        >>> from skfocal import FocalClassifier
        >>> X = np.array([[0.0], [0.2], [0.9], [1.0]] * 10)
        >>> y = np.array(["ham", "ham", "ham", "spam"] * 10)
        >>> clf = FocalClassifier(max_epochs=2, random_state=0).fit(X, y)
        >>> clf.classes_, clf.n_features_in_, len(clf.net_.history)
        (array(['ham', 'spam'], dtype='<U4'), 1, 2)
        """
        served = take_served(self, X, y, sample_weight)
        if served is not None:  # trained already, beside others (BatchedGridSearchCV)
            return served.apply(self)
        plan, X_valid = make_plan(self, X, y, sample_weight)
        (fitted,) = SkorchEngine(plan.device, plan.dtype).fit([plan], X_valid)
        return fitted_classifier(self, plan, fitted, X)

    # ------------------------------------------------------------------------------------------
    def _logits(self, X, method="predict"):
        """``(validated X, outputs of method)``: the module's logits streamed through ``X`` in
        batches, mapped per batch by the posterior (``predict_logits``: not mapped)."""
        check_is_fitted(self)
        post = {
            "predict_proba": self.posterior_.proba,
            "predict_logits": None,
        }.get(method, self.posterior_.decision)
        X = _inputs.validate_predict(self, X, method)
        module = self.net_.module_
        device = (
            next(module.parameters()).device
            if any(True for _ in module.parameters())
            else self.device_
        )
        options = self._inputs_.predict_options()
        rows = min(_inputs.n_rows(X), options.get("batch_rows", PREDICT_BATCH_ROWS))
        work = rows * module_macs(module) * tokens_per_row(X)
        with threads_for(work, device):  # chosen for the batch (skfocal._threads)
            logits = predict_logits(
                module,
                X,
                kind=self.net_.kind,
                device=device,
                dtype=getattr(torch, self.dtype),
                post=post,
                **options,
            )
        return X, logits

    def decision_function(self, X):
        r"""Decision scores of ``X``: the log-odds or log posterior behind ``predict_proba``.

        Not the network's output: the logits are mapped through the inverse link of the
        training loss and shifted to ``class_prior``, exactly as for ``predict_proba``, so
        that ``decision_function`` and ``predict_proba`` rank samples alike and ``predict``
        is their argmax (binary and multilabel: the sign). With :math:`p` =
        ``predict_proba(X)``:

        .. math::

            \text{binary: } \log\frac{p_1}{1 - p_1}, \qquad
            \text{multiclass: } \log p_k, \qquad
            \text{multilabel: } \log\frac{p_l}{1 - p_l}.

        The network's own outputs are :meth:`predict_logits`. See the user guide,
        "Probabilities and decisions".

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)
            Input data; a tensor gives a tensor on its device.

        Returns
        -------
        scores : ndarray or torch.Tensor
            Log-odds of ``classes_[1]`` of shape (n_samples,) (binary), log posterior of
            shape (n_samples, n_classes) (multiclass) or per-label log-odds of shape
            (n_samples, n_labels) (multilabel), in the floating dtype of ``X``.

        Examples
        --------
        >>> import numpy as np
        >>> from skfocal import FocalClassifier
        >>> X, y = np.array([[0.0], [1.0]] * 10), np.array([0, 1] * 10)
        >>> clf = FocalClassifier(max_epochs=2, random_state=0).fit(X, y)
        >>> scores = clf.decision_function(X)
        >>> scores.shape
        (20,)
        >>> p = clf.predict_proba(X)[:, 1]
        >>> bool(np.allclose(scores, np.log(p / (1 - p))))
        True
        """
        return _in_namespace_of(self._logits(X, method="decision_function")[1], X)

    def predict_logits(self, X):
        """The trained network's raw outputs on ``X`` (logits), in batches like ``predict``.

        What ``net_.module_`` returns (its ``logits`` entry for a mapping output), in eval
        mode and without gradients, before the inverse link and the ``class_prior`` shift
        that :meth:`decision_function` and :meth:`predict_proba` apply. Inputs are validated
        and moved to the training device as for ``predict``, in batches of 65,536 rows
        (``batch_size`` rows for dict and integer inputs to a ``module``).

        Parameters
        ----------
        X : array-like, torch.Tensor or dict of shape (n_samples, n_features)
            Input data, in the form ``fit`` was given; a tensor gives a tensor on its device.

        Returns
        -------
        logits : ndarray or torch.Tensor
            Shape (n_samples,) for a binary target (the one logit), else (n_samples,
            n_outputs), in the floating dtype of ``X``.

        Examples
        --------
        >>> import numpy as np
        >>> import torch
        >>> from skfocal import FocalClassifier
        >>> X, y = np.array([[0.0], [1.0]] * 10), np.array([0, 1] * 10)
        >>> clf = FocalClassifier(max_epochs=2, random_state=0).fit(X, y)
        >>> logits = clf.predict_logits(X)
        >>> logits.shape
        (20,)
        >>> with torch.no_grad():
        ...     module_out = clf.net_.module_(torch.tensor(X, dtype=torch.float32))
        >>> bool(np.allclose(logits, module_out[:, 0].numpy()))
        True
        """
        return _in_namespace_of(self._logits(X, method="predict_logits")[1], X)

    def predict_proba(self, X):
        """Class probabilities of ``X``, computed in batches on the training device.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)
            Input data; a tensor gives a tensor on its device.

        Returns
        -------
        proba : ndarray or torch.Tensor of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_`` (multilabel: per-label probability of
            the positive value).

        Examples
        --------
        >>> import numpy as np
        >>> from skfocal import FocalClassifier
        >>> X, y = np.array([[0.0], [1.0], [2.0]] * 10), np.array(["a", "b", "c"] * 10)
        >>> proba = FocalClassifier(max_epochs=2, random_state=0).fit(X, y).predict_proba(X)
        >>> proba.shape, bool(np.allclose(proba.sum(axis=1), 1.0))
        ((30, 3), True)
        """
        return _in_namespace_of(self._logits(X, method="predict_proba")[1], X)

    def predict(self, X):
        """Predicted labels (multilabel: 0/1 indicator matrix).

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y_pred : ndarray or torch.Tensor
            Labels from ``classes_``; a tensor on ``X``'s device when ``X`` is a tensor and
            the labels are numeric.

        Examples
        --------
        >>> import numpy as np
        >>> from skfocal import FocalClassifier
        >>> X, y = np.array([[-3.0], [3.0]] * 50), np.array(["no", "yes"] * 50)
        >>> clf = FocalClassifier(max_epochs=30, lr=0.05, random_state=0).fit(X, y)
        >>> clf.predict(np.array([[-3.0], [3.0]])).tolist()
        ['no', 'yes']
        """
        X_in = X
        X, scores = self._logits(X)
        return _in_namespace_of(self.net_.kind.labels(scores, self.classes_), X_in)


def fitted_classifier(estimator, plan, fitted, X_in):
    """``estimator`` fitted from a plan and what an engine trained for it; returns it.

    The one constructor of fitted classifiers: a single fit and every member of a batched
    search end here. Sets ``classes_``, ``class_weight_``, ``alpha_``, ``net_``,
    ``posterior_``, ``n_iter_``, ``class_prior_`` and ``device_`` (arrays in the namespace
    and on the device of the training input ``X_in``), and raises the error of a member
    whose training failed beside others.
    """
    if fitted.error is not None:
        raise fitted.error
    est = estimator
    est.classes_ = plan.classes
    resolved = plan.pos_weight if plan.class_weight is None else plan.class_weight
    est.class_weight_ = _inputs.like_input(resolved, X_in)
    alpha = plan.alpha
    est.alpha_ = alpha if not isinstance(alpha, np.ndarray) else _inputs.like_input(alpha, X_in)
    # an empty array in the namespace and on the device of the training X, against which
    # predict-time inputs are checked under array_api_dispatch (check_same_namespace)
    est._fit_array_ = _inputs.like_input(np.zeros(0, dtype=np.float32), X_in)
    est.device_ = torch.device(plan.device)
    est._inputs_ = plan.inputs
    est.net_ = fitted.net
    est.posterior_ = fitted.posterior
    est.n_iter_ = len(fitted.net.history)
    est.early_stopping_ = plan.params["early_stopping"]
    est.max_epochs_ = plan.params["max_epochs"]
    est.class_prior_ = _inputs.like_input(_decision_prior(plan, fitted.posterior), X_in)
    return est


def _decision_prior(plan, posterior):
    """The class prior decisions assume (multilabel: positive rates), as an ndarray."""
    shift = posterior.shift
    w = np.asarray(posterior.emphasis, dtype=float)
    prior = np.asarray(plan.data_prior, dtype=float)
    with np.errstate(divide="ignore"):  # a class with zero emphasis has prior 0 in training
        return _normalised_prior(plan, w, prior, shift)


def _normalised_prior(plan, w, prior, shift):
    if plan.kind.softmax or plan.n_outputs == 1:
        log_p = np.log(w * prior) if shift is None else np.log(w * prior) + shift
        p = np.exp(log_p - log_p.max())
        return p / p.sum()
    odds = np.log(w[1] * prior) - np.log(w[0] * (1 - prior))
    if shift is not None:
        odds = odds + shift
    return 1 / (1 + np.exp(-odds))


def _in_namespace_of(result, X):
    """``result`` (computed from a host copy) back in the namespace of a foreign array ``X``."""
    return _inputs.like_input(result, X) if _inputs.is_foreign_array(X) else result
