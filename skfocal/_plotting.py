"""Training curves from the fit history: per-epoch losses and validation scores.

matplotlib is an optional dependency: it is imported only when
:func:`plot_training_curves` is called.
"""

from __future__ import annotations

import numbers

import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

# Per-epoch bookkeeping that skorch stores next to the curves; none of it is a curve.
_NOT_CURVES = {"epoch", "batches", "dur", "train_batch_count", "valid_batch_count"}


def _history_rows(estimator_or_history):
    """Return the history of a fitted estimator, a skorch net or a history as a list of dicts."""
    obj = estimator_or_history
    if isinstance(obj, BaseEstimator) and not hasattr(obj, "history_"):
        # A scikit-learn estimator wrapping a skorch net (FocalClassifier stores it in net_).
        check_is_fitted(obj)
        obj = getattr(obj, "net_", None)
        if obj is None:
            raise TypeError(
                "estimator_or_history must be a fitted estimator with a skorch net in `net_`, "
                f"a skorch net, or a skorch History; got {type(estimator_or_history).__name__} "
                "without a `net_` attribute."
            )
    if hasattr(obj, "history_"):
        if obj.history_ is None:
            raise ValueError(
                "estimator_or_history is a skorch net that has not been initialized or fitted; "
                "call fit first."
            )
        obj = obj.history_
    if isinstance(obj, list | tuple) and all(isinstance(row, dict) for row in obj):
        return list(obj)
    raise TypeError(
        "estimator_or_history must be a fitted FocalClassifier, a skorch net, a skorch History "
        f"or a list of per-epoch dicts; got {type(estimator_or_history).__name__}."
    )


def _is_curve_value(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def training_curves(estimator_or_history):
    """Per-epoch training curves of a fitted estimator, as a DataFrame.

    Reads the skorch history of the fit: the training loss, the validation loss and every
    per-epoch validation score that was recorded -- with
    :class:`~skfocal.FocalClassifier` that includes the early-stopping metric chosen by
    ``scoring`` -- one row per epoch.

    Parameters
    ----------
    estimator_or_history : estimator, skorch net, skorch History or list of dict
        A fitted :class:`~skfocal.FocalClassifier` (its ``net_.history`` is read), any fitted
        skorch ``NeuralNet``, a skorch ``History``, or a list of per-epoch dicts with an
        ``"epoch"`` key.

    Returns
    -------
    curves : pandas.DataFrame
        Indexed by ``epoch`` (starting at 1). Columns: ``train_loss``, ``valid_loss`` (when a
        validation split was used), then every other numeric per-epoch entry of the history
        in the order it was recorded (for example ``valid_acc`` or the early-stopping score).
        Bookkeeping entries (``dur``, batch counts, ``*_best`` flags, ``event_*``) are left
        out. Epochs where an entry was not recorded hold NaN.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If an estimator is given that has not been fitted.
    TypeError
        If `estimator_or_history` is none of the accepted types.

    See Also
    --------
    plot_training_curves : Draw these curves with matplotlib.

    Examples
    --------
    >>> from skfocal import training_curves
    >>> history = [
    ...     {"epoch": 1, "train_loss": 0.70, "valid_loss": 0.68, "valid_acc": 0.51, "dur": 0.1},
    ...     {"epoch": 2, "train_loss": 0.52, "valid_loss": 0.55, "valid_acc": 0.74, "dur": 0.1},
    ... ]
    >>> training_curves(history)
           train_loss  valid_loss  valid_acc
    epoch
    1            0.70        0.68       0.51
    2            0.52        0.55       0.74
    """
    rows = _history_rows(estimator_or_history)
    columns: dict[str, None] = {}
    records = []
    for position, row in enumerate(rows, start=1):
        record = {"epoch": int(row.get("epoch", position))}
        for key, value in row.items():
            if key in _NOT_CURVES or key.endswith("_best") or key.startswith("event_"):
                continue
            if _is_curve_value(value):
                record[key] = float(value)
                columns.setdefault(key, None)
        records.append(record)
    first = [name for name in ("train_loss", "valid_loss") if name in columns]
    order = first + [name for name in columns if name not in first]
    frame = pd.DataFrame.from_records(records, columns=["epoch", *order])
    return frame.set_index("epoch")


def _best_epochs(rows, names):
    """Last epoch skorch flagged as best (``<name>_best``) for each curve that has flags."""
    best = {}
    for name in names:
        flagged = [row.get("epoch") for row in rows if row.get(f"{name}_best") is True]
        if flagged:
            best[name] = flagged[-1]
    return best


def plot_training_curves(estimator, ax=None):
    """Plot the per-epoch losses and validation scores of a fitted estimator.

    Losses are drawn on `ax` (left axis); validation scores such as the early-stopping
    metric on a twin right axis, with a marker at the epoch skorch flagged as best. When the
    estimator was trained with ``warmup_epochs > 0`` (plain cross-entropy first), a dashed
    vertical line marks the switch to the chosen loss, where the training loss changes scale.

    matplotlib is imported when this function is called; it is not a dependency of skfocal.

    Parameters
    ----------
    estimator : estimator, skorch net, skorch History or list of dict
        Anything :func:`training_curves` accepts, typically a fitted
        :class:`~skfocal.FocalClassifier`.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw the losses on. A new figure is created when None.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes holding the loss curves. The score axis, when there are scores, is
        ``ax.right_ax``.

    See Also
    --------
    training_curves : The same data as a DataFrame.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skfocal import plot_training_curves
    >>> history = [
    ...     {"epoch": 1, "train_loss": 0.70, "valid_loss": 0.68, "valid_acc": 0.51},
    ...     {"epoch": 2, "train_loss": 0.52, "valid_loss": 0.55, "valid_acc": 0.74},
    ... ]
    >>> ax = plot_training_curves(history)
    >>> ax.get_xlabel()
    'epoch'
    """
    try:
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError as exc:  # pragma: no cover - exercised only without matplotlib
        raise ImportError(
            "plot_training_curves needs matplotlib; install it with `pip install matplotlib`."
        ) from exc

    curves = training_curves(estimator)
    rows = _history_rows(estimator)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    losses = [name for name in curves.columns if name.endswith("_loss")]
    scores = [name for name in curves.columns if name not in losses]
    for name in losses:
        ax.plot(curves.index, curves[name], marker=".", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = ax.get_legend_handles_labels()

    if scores:
        right = ax.twinx()
        ax.right_ax = right
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        best = _best_epochs(rows, scores)
        for i, name in enumerate(scores):
            color = colors[(len(losses) + i) % len(colors)]
            right.plot(curves.index, curves[name], ls="--", marker=".", color=color, label=name)
            if name in best:
                epoch = best[name]
                right.plot(
                    [epoch],
                    [curves.loc[epoch, name]],
                    marker="*",
                    ms=14,
                    color=color,
                    ls="none",
                    label=f"best {name} (epoch {epoch})",
                )
        right.set_ylabel("validation score")
        more_handles, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels

    warmup = getattr(estimator, "warmup_epochs", 0)
    if isinstance(warmup, numbers.Integral) and warmup > 0 and len(curves):
        line = ax.axvline(warmup + 0.5, color="grey", ls=":", lw=1.5)
        handles.append(line)
        labels.append(f"end of cross-entropy warm-up ({warmup} epochs)")
    ax.legend(handles, labels, fontsize="small", loc="best")
    return ax
