"""The network of :class:`~skfocal.FocalClassifier`: a default MLP, user modules, output bias.

A user ``module`` may be

* ``None``: :class:`MLP` sized from the data;
* an ``nn.Module`` *class*, or any callable returning an ``nn.Module`` (a factory function,
  ``functools.partial(MyNet, width=128)``): it is called with the keyword arguments
  ``n_features`` and ``n_outputs`` for those of the two its signature accepts (by name, or all of
  them through ``**kwargs``) and not already bound, and with no argument otherwise;
* an ``nn.Module`` *instance*: it is deep-copied at every ``fit``, so that refits start from the
  same weights, the instance the user holds is never trained in place and ``sklearn.clone``
  works.

In every case the module maps its input to logits of shape ``(N, n_outputs)``; for a binary
target ``n_outputs`` is 1 and an output of shape ``(N,)`` is accepted as well. The input is a
float tensor of shape ``(N, n_features)``, an int64 tensor of ids, or keyword arguments for a
dict ``X`` (then no ``n_features`` is passed); the output may be a tensor or a mapping (a
Hugging Face ``ModelOutput``) with a ``logits`` entry (see :mod:`skfocal._inputs`).
"""

from __future__ import annotations

import copy
import inspect
import warnings

import torch
import torch.nn.functional as F
from torch import nn


class CosineLinear(nn.Module):
    r"""Bias-free layer of cosine similarities, :math:`z_c = \cos(x, w_c)`.

    The normalised last layer that LDAM is trained with (``NormedLinear`` of the LDAM-DRW
    reference, which normalises the columns of its ``(in, out)`` weight; here the weight is
    laid out ``(out, in)`` like ``nn.Linear``'s and each output's row is normalised). Outputs
    lie in ``[-1, 1]``, so a loss needs a scale (``scale`` of :func:`~skfocal.losses.ldam_loss`)
    to reach confident probabilities. An all-zero input gives zero logits.

    Parameters
    ----------
    in_features, out_features : int
        Input and output sizes.

    Examples
    --------
    >>> import torch
    >>> from skfocal._module import CosineLinear
    >>> layer = CosineLinear(3, 2)
    >>> z = layer(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]))
    >>> bool((z.abs() <= 1).all()), z[1].tolist()
    (True, [0.0, 0.0])
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        # the reference's uniform(-1, 1) then renorm to unit rows (the scale is irrelevant)
        nn.init.uniform_(self.weight, -1.0, 1.0)

    def forward(self, X):
        return F.linear(F.normalize(X, dim=-1), F.normalize(self.weight, dim=1))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias=False"


OUTPUT_LAYERS = ("linear", "cosine")


class MLP(nn.Module):
    """Multi-layer perceptron returning logits: ``Linear -> ReLU -> Dropout`` blocks, output layer.

    Parameters
    ----------
    n_features : int
        Number of input features.
    n_outputs : int
        Number of logits (1 for a binary target, the number of classes or labels otherwise).
    hidden_layer_sizes : tuple of int, default=(64,)
        Width of each hidden layer; ``()`` gives a linear model (logistic/softmax regression).
    dropout : float, default=0.0
        Dropout probability after every hidden layer.
    output_layer : {"linear", "cosine"}, default="linear"
        ``"linear"``: an ``nn.Linear`` with bias. ``"cosine"``: a bias-free
        :class:`CosineLinear` whose logits are cosine similarities in ``[-1, 1]``, the
        normalised last layer that LDAM's ``scale`` is meant for (the output bias of
        ``bias_init`` then cannot be set, see :func:`init_output_bias`).

    Examples
    --------
    >>> import torch
    >>> from skfocal._module import MLP
    >>> MLP(3, 2, hidden_layer_sizes=(8,))(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    >>> MLP(3, 2, output_layer="cosine")(torch.randn(5, 3)).abs().max() <= 1
    tensor(True)
    """

    def __init__(
        self, n_features, n_outputs, hidden_layer_sizes=(64,), dropout=0.0, output_layer="linear"
    ):
        super().__init__()
        if output_layer not in OUTPUT_LAYERS:
            raise ValueError(f"output_layer must be one of {OUTPUT_LAYERS}, got {output_layer!r}.")
        layers = []
        width = n_features
        for size in hidden_layer_sizes:
            layers.append(nn.Linear(width, size))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        if output_layer == "cosine":
            layers.append(CosineLinear(width, n_outputs))
        else:
            layers.append(nn.Linear(width, n_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)

    def forward_float64(self, X):
        """The network's logits computed in float64, from its weights and ``X`` widened exactly.

        A float32 matrix product picks its kernel by the number of rows, so the float32
        logits of one row change in the last bits (about 1e-7 relative) with the rows
        computed beside it. In float64 the same row gives the same logits, to about 1e-16,
        in every batch: the float32 network's function, computed more exactly.
        :func:`~skfocal._net.predict_logits` predicts through this, so that predictions do
        not depend on how rows are batched.
        """
        params = {name: p.double() for name, p in self.named_parameters()}
        return torch.func.functional_call(self, params, (X.double(),))


def build_module(module, n_features, n_outputs, hidden_layer_sizes, dropout, output_layer="linear"):
    """Return a fresh ``nn.Module`` for one fit (see the module docstring for the rules).

    ``output_layer`` is passed to the default :class:`MLP` (``module=None``) only.
    """
    if module is None:
        return MLP(n_features, n_outputs, tuple(hidden_layer_sizes), dropout, output_layer)
    if isinstance(module, nn.Module):
        return copy.deepcopy(module)
    if callable(module):
        wanted = {"n_features": n_features, "n_outputs": n_outputs}
        if n_features is None:  # a dict X has no width
            del wanted["n_features"]
        try:
            params = inspect.signature(module).parameters
        except (TypeError, ValueError):  # builtins without a signature: call without arguments
            params = {}
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            kwargs = wanted
        else:
            kwargs = {name: value for name, value in wanted.items() if name in params}
        if params:
            _check_factory_signature(module, kwargs, wanted)
        built = module(**kwargs)
        if not isinstance(built, nn.Module):
            raise TypeError(
                f"module must build an nn.Module; calling {module!r} returned "
                f"{type(built).__name__}."
            )
        return built
    raise TypeError(
        "module must be None, an nn.Module subclass, a callable returning an nn.Module or an "
        f"nn.Module instance, got {module!r}."
    )


def _check_factory_signature(module, kwargs, wanted):
    """Raise, naming ``module``, when it cannot be called with the keyword arguments ``kwargs``.

    A factory whose parameters have other names (``lambda f, o: Net(f, o)``, ``nn.Linear``'s
    ``in_features``) would otherwise fail with Python's bare "missing 2 required positional
    arguments"; an error raised inside a factory that accepts its arguments is left alone.
    """
    signature = inspect.signature(module)
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        given = " and ".join(f"{name}={value}" for name, value in wanted.items())
        raise TypeError(
            f"module={module!r} cannot be built: a module class or factory receives {given} "
            "by keyword, each only if its signature has a parameter of that name (or "
            f"**kwargs), but its signature is {signature} ({exc}). Name its parameters "
            "n_features and n_outputs (e.g. lambda n_features, n_outputs: Net(n_features, "
            "n_outputs)), bind the others with functools.partial, or pass an nn.Module instance."
        ) from None


def output_layer(module, n_outputs):
    """The last ``nn.Linear`` of ``module`` with ``n_outputs`` outputs and a bias, or None."""
    found = None
    for layer in module.modules():
        if isinstance(layer, nn.Linear) and layer.out_features == n_outputs:
            if layer.bias is not None:
                found = layer
    return found


def _cosine_output(module, n_outputs):
    """Whether the last candidate output layer of ``module`` is a :class:`CosineLinear`."""
    cosine = False
    for layer in module.modules():
        if isinstance(layer, CosineLinear) and layer.out_features == n_outputs:
            cosine = True
        elif isinstance(layer, nn.Linear) and layer.out_features == n_outputs:
            cosine = cosine and layer.bias is None
    return cosine


def init_output_bias(module, bias_init, prior, kind, n_outputs):
    r"""Apply ``bias_init`` (``"prior"`` or ``"zero"``) to the output layer of ``module``.

    With ``"prior"`` the bias is ``kind.prior_logits(prior)``: the bias that makes a constant
    model predict ``prior`` (binary: :math:`\log(\pi_1/\pi_0)`; multiclass: the centred
    :math:`\log \pi_c`; multilabel: each label's log-odds). A user module without a
    recognisable output layer (an ``nn.Linear`` with ``n_outputs`` outputs and a bias) is
    left untouched, with a warning. A bias-free :class:`CosineLinear` output layer has
    nothing to initialise: ``"zero"`` is then what it already is (silently), and ``"prior"``
    is skipped with a warning (put the prior into the loss instead, e.g. logit adjustment).
    """
    if _cosine_output(module, n_outputs):
        if bias_init != "zero":
            warnings.warn(
                f"bias_init={bias_init!r} was not applied: the cosine output layer has no bias "
                "(its logits are cosine similarities); a class prior can enter through the "
                "loss instead, e.g. logit adjustment.",
                UserWarning,
                stacklevel=3,
            )
        return module
    layer = output_layer(module, n_outputs)
    if layer is None:
        warnings.warn(
            f"bias_init={bias_init!r} was not applied: the module has no nn.Linear layer with "
            f"{n_outputs} output(s) and a bias; its own initialisation is kept.",
            UserWarning,
            stacklevel=3,
        )
        return module
    with torch.no_grad():
        if bias_init == "zero":
            layer.bias.zero_()
        else:
            bias = kind.prior_logits(prior)
            layer.bias.copy_(bias.to(layer.bias.dtype))
    return module
