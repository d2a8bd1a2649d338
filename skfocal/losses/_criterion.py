"""The base of the ``nn.Module`` criteria: hyperparameters validated once, weights cached.

Every loss file's modules (``FocalLoss`` in ``_focal``, ``LDAMLoss`` in ``_ldam``, ...)
subclass :class:`_AlphaLoss`. The modules validate their hyperparameters once at
construction and keep a per-class ``alpha`` (and ``pos_weight``) as buffers, so
``.to(device)`` and ``state_dict`` carry them. Their ``forward`` checks only the data (shapes;
on the CPU also the target values, which costs no device synchronisation) and calls the same
internal path as the functions, with the derived weight tensors cached per dtype and device:
at training batch sizes, where the loss costs tens of microseconds, per-call argument handling
is a visible share. They work as criteria anywhere PyTorch or skorch expects one, e.g.
``NeuralNetClassifier(criterion=FocalLoss, criterion__gamma=2.0)``.
"""

from __future__ import annotations

import torch
from torch import nn

from .._fastpaths import tensor_version
from ._checks import (
    check_alpha,
    check_binary_shapes,
    check_binary_target_values,
    check_multiclass_shapes,
    check_reduction,
    cpu_checked,
    label_alpha,
)
from ._fused import compute_dtype
from ._reduce import sigmoid_apply, sigmoid_weights, softmax_loss
from ._sigmoid import pair_constants, signed_constants


def _stamp(value):
    """A hashable stand-in for a hyperparameter: a tensor by identity and version.

    Where the version cannot be read (:func:`skfocal._fastpaths.tensor_version`), a tensor's
    stamp is a fresh object, so that nothing is cached on it.
    """
    if not isinstance(value, torch.Tensor):
        return value
    version = tensor_version(value)
    return (id(value), version) if version is not None else object()


def _shown(value):
    """A hyperparameter as ``repr`` shows it: a tensor as a list."""
    return value.tolist() if isinstance(value, torch.Tensor) else value


class _AlphaLoss(nn.Module):
    """Stores the validated ``alpha``/``pos_weight`` (as buffers when tensors) and reduction.

    A subclass names its functional form (``_function``) and its own hyperparameters
    (``_hyperparameters``, attributes of the module): ``forward`` is then one delegation and
    ``extra_repr`` prints them, followed by ``alpha``, ``reduction`` and (softmax losses, which
    set it) ``ignore_index``. The focal and margin modules override ``forward`` with the
    cached weights of :meth:`_softmax` / :meth:`_sigmoid`.
    """

    _function = None
    _hyperparameters = ()

    def __init__(self, alpha, reduction: str, pos_weight=None):
        super().__init__()
        self.reduction = check_reduction(reduction)
        alpha = cpu_checked(check_alpha, alpha)
        if isinstance(alpha, torch.Tensor):
            self.register_buffer("alpha", alpha.to(torch.get_default_dtype()))
        else:
            self.alpha = alpha
        if pos_weight is not None:
            self.register_buffer(
                "pos_weight", torch.as_tensor(pos_weight, dtype=torch.get_default_dtype())
            )
        else:
            self.pos_weight = None

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        kwargs = {name: getattr(self, name) for name in self._hyperparameters}
        if "ignore_index" in vars(self):  # a softmax loss
            kwargs["ignore_index"] = self.ignore_index
        else:
            kwargs["pos_weight"] = self.pos_weight
        return self._function(input, target, alpha=self.alpha, reduction=self.reduction, **kwargs)

    def extra_repr(self) -> str:
        parts = [f"{name}={_shown(getattr(self, name))}" for name in self._hyperparameters]
        parts.append(self._alpha_repr())
        if "ignore_index" in vars(self):
            parts.append(f"ignore_index={self.ignore_index}")
        return ", ".join(parts)

    def _check_label_alpha(self) -> None:
        """Sigmoid losses weight negatives by ``1 - alpha``: per-label entries must be <= 1."""
        if isinstance(self.alpha, torch.Tensor):
            label_alpha(self.alpha.cpu(), self.alpha.numel(), self.alpha.cpu())

    def _register_vector(self, name: str, tensor: torch.Tensor) -> None:
        """A validated tensor hyperparameter: a buffer, or a float if it is 0-d."""
        if tensor.dim() == 0:
            setattr(self, name, float(tensor))
        else:
            self.register_buffer(name, tensor.detach().to(torch.get_default_dtype()))

    def _lean_mean(self):
        """This criterion's lean batch mean (value and gradient for a training loop, see the
        focal losses' ``SoftmaxFocalMean``), or None: a loss without one is averaged by the
        loop from its ``reduction="none"`` losses."""
        return None

    def _alpha_repr(self) -> str:
        return f"alpha={_shown(self.alpha)}, reduction={self.reduction!r}"

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_weights_cache", None)
        return state

    def _cached(self, input, build, extra=None):
        """``build(input)`` cached on ``input``'s dim, dtype and device, on the weights and on
        ``extra``.

        The cache holds the weights it was built from, so their ``id`` cannot be reused while
        it lives; a tensor's in-place change shows in its version.
        """
        alpha, pos_weight = self.alpha, self.pos_weight
        key = (input.dim(), input.dtype, input.device, _stamp(alpha), _stamp(pos_weight), extra)
        cache = self.__dict__.get("_weights_cache")
        if cache is not None and cache[0] == key:
            return cache[1]
        value = build(input)
        self.__dict__["_weights_cache"] = (key, value, alpha, pos_weight)
        return value

    def _class_weights(self, input):
        """``alpha`` for the softmax losses as a class-weight tensor, cached."""
        alpha = self.alpha
        if isinstance(alpha, torch.Tensor):
            return self._cached(input, lambda x: alpha.to(device=x.device, dtype=x.dtype))
        if alpha is None or input.shape[1] != 2:
            return alpha  # None, or the two-class shorthand with C != 2: softmax_loss says so
        return self._cached(
            input, lambda x: torch.tensor([1.0 - alpha, alpha], dtype=x.dtype, device=x.device)
        )

    def _softmax(self, input, target, name, kernel):
        input, target, unbatched = check_multiclass_shapes(input, target, name)
        alpha = self._class_weights(input)
        loss = softmax_loss(input, target, alpha, self.reduction, self.ignore_index, kernel)
        return loss.squeeze(0) if unbatched and self.reduction == "none" else loss

    def _sigmoid_weights(self, input):
        pos_w, neg_w = sigmoid_weights(self.alpha, self.pos_weight, input)
        n = input.numel()
        scale = 1.0 / n if self.reduction == "mean" and n else 1.0
        cdtype = compute_dtype(input.dtype)
        consts = pair_constants(pos_w, neg_w, input.dim(), cdtype, input.device, scale)
        signed = signed_constants(pos_w, neg_w, cdtype, input.device, scale)
        return pos_w, neg_w, consts, signed

    def _sigmoid(self, input, target, name, kernel):
        if not (
            isinstance(input, torch.Tensor)
            and isinstance(target, torch.Tensor)
            and target.dtype is input.dtype
            and input.shape == target.shape
            and input.is_floating_point()
        ):
            input, target = check_binary_shapes(input, target, name)  # raises or converts
        hard = check_binary_target_values(target, name)
        # the constants hold the mean's 1 / n: rebuilt when the batch size changes
        n = input.numel() if self.reduction == "mean" else None
        pos_w, neg_w, consts, signed = self._cached(input, self._sigmoid_weights, n)
        return sigmoid_apply(
            input, target, kernel, self.reduction, pos_w, neg_w, consts, hard, signed
        )
