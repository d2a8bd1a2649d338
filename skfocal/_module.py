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
from torch import nn


class MLP(nn.Module):
    """Multi-layer perceptron returning logits: ``Linear -> ReLU -> Dropout`` blocks, ``Linear``.

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

    Examples
    --------
    >>> import torch
    >>> from skfocal._module import MLP
    >>> MLP(3, 2, hidden_layer_sizes=(8,))(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    """

    def __init__(self, n_features, n_outputs, hidden_layer_sizes=(64,), dropout=0.0):
        super().__init__()
        layers = []
        width = n_features
        for size in hidden_layer_sizes:
            layers.append(nn.Linear(width, size))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, n_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)


def build_module(module, n_features, n_outputs, hidden_layer_sizes, dropout):
    """Return a fresh ``nn.Module`` for one fit (see the module docstring for the rules)."""
    if module is None:
        return MLP(n_features, n_outputs, tuple(hidden_layer_sizes), dropout)
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


def output_layer(module, n_outputs):
    """The last ``nn.Linear`` of ``module`` with ``n_outputs`` outputs and a bias, or None."""
    found = None
    for layer in module.modules():
        if isinstance(layer, nn.Linear) and layer.out_features == n_outputs:
            if layer.bias is not None:
                found = layer
    return found


def init_output_bias(module, bias_init, prior, kind, n_outputs):
    r"""Apply ``bias_init`` (``"prior"`` or ``"zero"``) to the output layer of ``module``.

    With ``"prior"`` the bias is ``kind.prior_logits(prior)``: the bias that makes a constant
    model predict ``prior`` (binary: :math:`\log(\pi_1/\pi_0)`; multiclass: the centred
    :math:`\log \pi_c`; multilabel: each label's log-odds). A user module without a
    recognisable output layer (an ``nn.Linear`` with ``n_outputs`` outputs and a bias) is
    left untouched, with a warning.
    """
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
