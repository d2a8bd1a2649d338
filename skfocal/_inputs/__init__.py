"""One home for what ``X`` is: validation, input forms, devices and namespaces.

The path of ``X`` through a fit visits this package once, at the entry
(:func:`validate_fit`, which makes the fit's :class:`InputSpec`); everything after it -- the
plan, the engines, the batch iterator, prediction -- only asks the spec's form and the
helpers below how to count rows, take rows, move them to a device and call the module.

* :mod:`._validate` -- :func:`validate_fit` / :func:`validate_predict`;
* :mod:`._forms` -- the input forms (float features, integer ids, dicts): :class:`InputSpec`,
  :func:`n_rows`, :func:`take`, :func:`to_device`, :func:`forward`, :func:`output_like`, and
  the one dry-forward check of a module before training (:func:`check_forward`);
* :mod:`._arrays` -- devices (:func:`resolve_device`, :func:`device_runs`), tensor and dtype
  checks, foreign array-API arrays in and results back out (:func:`like_input`).
"""

from ._arrays import (
    check_fits_dtype,
    check_label_types,
    check_same_namespace,
    check_tensor_X,
    device_runs,
    foreign_to_numpy,
    import_accelerate,
    is_foreign_array,
    like_input,
    resolve_device,
    y_to_numpy,
)
from ._forms import (
    DICT,
    DRY_ROWS,
    FLOAT,
    IDS,
    InputSpec,
    check_dict,
    check_forward,
    check_predict_form,
    check_signature,
    forget_features,
    forward,
    input_spec,
    is_dict,
    is_integer_input,
    logits_of,
    n_features,
    n_rows,
    output_like,
    take,
    to_device,
)
from ._validate import validate_fit, validate_predict

__all__ = [
    "DICT",
    "DRY_ROWS",
    "FLOAT",
    "IDS",
    "InputSpec",
    "check_dict",
    "check_fits_dtype",
    "check_forward",
    "check_label_types",
    "check_predict_form",
    "check_same_namespace",
    "check_signature",
    "check_tensor_X",
    "device_runs",
    "foreign_to_numpy",
    "forget_features",
    "forward",
    "import_accelerate",
    "input_spec",
    "is_dict",
    "is_foreign_array",
    "is_integer_input",
    "like_input",
    "logits_of",
    "n_features",
    "n_rows",
    "output_like",
    "resolve_device",
    "take",
    "to_device",
    "validate_fit",
    "validate_predict",
    "y_to_numpy",
]
