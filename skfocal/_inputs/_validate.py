"""What ``fit`` and ``predict`` accept: the validation of ``X``, ``y`` and ``sample_weight``.

:func:`validate_fit` runs once per fit, at its entry: it brings foreign array-API arrays to
the host, decides the input form (:class:`~skfocal._inputs.InputSpec`, made here once and
kept by the plan and the fitted estimator), validates ``X`` for that form (scikit-learn's
``validate_data`` for arrays, which also sets ``n_features_in_`` / ``feature_names_in_``; our
own checks for tensors and dicts), checks that finite values stay finite in the training
dtype, and validates the target and the sample weights. :func:`validate_predict` does the
same for a fitted estimator's input, which must have the fitted form.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, column_or_1d, validate_data

from ._arrays import (
    check_fits_dtype,
    check_label_types,
    check_same_namespace,
    check_tensor_X,
    foreign_to_numpy,
    is_foreign_array,
    y_to_numpy,
)
from ._forms import DICT, check_dict, check_predict_form, forget_features, input_spec, n_rows


def _host(a):
    return foreign_to_numpy(a) if is_foreign_array(a) else a


def validate_fit(estimator, X, y, sample_weight):
    """``(X, y, sample_weight, spec)`` validated for ``estimator.fit``.

    ``spec`` is the :class:`~skfocal._inputs.InputSpec` of ``X`` (its form and, for non-tabular
    forms, the rows per prediction batch); ``y`` is an ndarray (a column vector raveled with
    scikit-learn's warning), ``sample_weight`` float64 or None.
    """
    X, y, sample_weight = _host(X), _host(y), _host(sample_weight)
    spec = input_spec(X, estimator.module, estimator.batch_size)
    if spec.form == DICT:
        if estimator.module is None:
            raise ValueError(
                "X is a dict (keys "
                f"{list(spec.keys)}), whose values are passed to the network as keyword "
                "arguments; this needs module= a network whose forward accepts them (the "
                "default MLP, module=None, takes one 2-D float array)."
            )
        X, y = check_dict(X, "fit"), y_to_numpy(y)
        forget_features(estimator)
    elif isinstance(X, torch.Tensor):
        validate_data(estimator, X, y, skip_check_array=True)
        X = check_tensor_X(X, "fit")
        y = y_to_numpy(y)
    else:
        X, y = validate_data(
            estimator,
            X,
            y,
            dtype=spec.validate_dtype,
            multi_output=True,
            ensure_min_samples=1,
        )
        y = y_to_numpy(y)
    if spec.form != DICT:
        X = check_fits_dtype(X, getattr(torch, estimator.dtype), "fit")
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    check_label_types(y)
    if len(y) != n_rows(X):
        raise ValueError(f"X and y have inconsistent numbers of samples: {n_rows(X)} and {len(y)}.")
    check_classification_targets(y)
    if sample_weight is not None:
        if isinstance(sample_weight, torch.Tensor):
            sample_weight = sample_weight.detach().cpu().numpy()
        sample_weight = _check_sample_weight(
            sample_weight,
            np.empty((n_rows(X), 0)),
            dtype=np.float64,
            ensure_non_negative=True,
        )
    return X, y, sample_weight, spec


def validate_predict(estimator, X, method):
    """``X`` validated for a fitted ``estimator``'s ``method`` (its fitted input form)."""
    check_same_namespace(X, estimator._fit_array_, estimator, method)
    X = _host(X)
    spec = estimator._inputs_
    check_predict_form(spec, X, method)
    if spec.form == DICT:
        return check_dict(X, method, keys=spec.keys)
    if isinstance(X, torch.Tensor):
        validate_data(estimator, X, skip_check_array=True, reset=False)
        X = check_tensor_X(X, "predict")
    else:
        X = validate_data(estimator, X, dtype=spec.validate_dtype, reset=False)
    return check_fits_dtype(X, getattr(torch, estimator.dtype), method)
