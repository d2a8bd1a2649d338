r"""The lean training step: zero the gradients, backpropagate, update, with least Python.

At a small network's batch sizes the arithmetic of a step costs less than the Python around
it. Measured on a 2-core CPU for an MLP of 64 at batch 256, torch's ``Optimizer.step`` of a
fused AdamW costs about 115 us, of which the fused kernel is 9 us: the profiler scopes, the
hook dispatch, re-collecting the parameters, gradients and state every step
(``_init_group``), grouping them by device and dtype, and a ``_foreach_add_`` of the step
counts. ``loss.backward()`` adds about 25 us of argument handling to the engine's own call,
and ``zero_grad`` a profiler scope.

:class:`LeanStep` does the same three things for one optimizer:

* ``zero_grad``: sets the gradients of the optimizer's parameters to None (torch's
  ``zero_grad()`` default, ``set_to_none=True``);
* ``backward``: calls the autograd engine on the scalar loss with a gradient of 1, exactly
  what ``loss.backward()`` does after its argument checks (on a CPU, for a plain tensor;
  otherwise ``loss.backward()`` itself);
* ``step``: for torch's own ``Adam`` / ``AdamW`` with ``fused=True`` on a CPU, calls the very
  kernel torch's step calls (``torch._fused_adam_`` / ``torch._fused_adamw_``) with lists
  built once per epoch from the optimizer's own state, after adding 1 to the step counts --
  the same update, bit for bit, on the same state tensors. Anything else (another optimizer,
  AMSGrad, hooks, a tensor learning rate, a parameter without a gradient, uninitialised state,
  a GPU) goes through ``optimizer.step()``.

The lists are rebuilt by :meth:`LeanStep.prepare` at the start of every epoch, so state that
a callback replaces between epochs (``load_state_dict``, a learning-rate schedule's new
``lr``, which is read at every step anyway) is picked up. Within an epoch nothing else can
touch the optimizer: the lean loop runs only when no callback listens to per-batch events.
"""

from __future__ import annotations

import torch

try:  # the engine torch.autograd.backward calls after its argument handling
    from torch.autograd import Variable as _Variable

    _run_backward = _Variable._execution_engine.run_backward
except AttributeError:  # pragma: no cover - a torch without it: the public call
    _run_backward = None

_KERNELS = {  # by decoupled weight decay
    False: getattr(torch, "_fused_adam_", None),
    True: getattr(torch, "_fused_adamw_", None),
}
_LEAN_DEVICES = ("cpu",)


def _no_hooks(optimizer):
    from torch.optim import optimizer as _optimizer_module

    return not (
        optimizer._optimizer_step_pre_hooks
        or optimizer._optimizer_step_post_hooks
        or getattr(_optimizer_module, "_global_optimizer_pre_hooks", None)
        or getattr(_optimizer_module, "_global_optimizer_post_hooks", None)
    )


def _fused_group(group, state, decoupled_default):
    """The kernel call of one param group as ``(kernel, lists, shared)``, or None.

    ``lists`` are the kernel's tensor lists (parameters, moments, no AMSGrad maxima, step
    counts); ``shared`` is the 1-d tensor whose elements the step counts are.

    None when the group is not a fused, plain (no AMSGrad, not differentiable or capturable),
    float-``lr`` group of initialised, real, same-device same-dtype CPU parameters.
    """
    params = list(group["params"])
    if not params or not group.get("fused") or group.get("amsgrad") or group.get("differentiable"):
        return None
    if group.get("capturable") or isinstance(group["lr"], torch.Tensor):
        return None
    beta1, beta2 = group["betas"]
    if isinstance(beta1, torch.Tensor) or isinstance(beta2, torch.Tensor):
        return None
    first = params[0]
    if first.device.type not in _LEAN_DEVICES or first.is_complex():
        return None
    states = []
    for p in params:
        s = state.get(p)
        if (
            p.device != first.device
            or p.dtype != first.dtype
            or not s
            or not {"step", "exp_avg", "exp_avg_sq"} <= s.keys()
        ):
            return None
        states.append(s)
    kernel = _KERNELS[bool(group.get("decoupled_weight_decay", decoupled_default))]
    if kernel is None:
        return None
    steps = [s["step"] for s in states]
    shared = _shared_base(steps)
    if shared is None:  # one tensor of every count: one add per step instead of a foreach add
        shared = torch.stack([t.detach() for t in steps])
        for i, s in enumerate(states):
            s["step"] = shared[i]
        steps = [s["step"] for s in states]
    lists = (params, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], [], steps)
    return kernel, lists, shared


def _shared_base(steps):
    """The 1-d tensor whose elements ``steps`` are, in order, if they are; else None."""
    base = steps[0]._base
    if base is None or base.dim() != 1 or len(base) != len(steps):
        return None
    for i, t in enumerate(steps):
        if t._base is not base or t.dim() != 0 or t.storage_offset() != base.storage_offset() + i:
            return None
    return base


def steps_without_closure(optimizer):
    """Whether ``optimizer.step()`` needs no closure: torch's own optimizers but L-BFGS.

    Those evaluate a closure once, before their update, exactly what computing the loss and
    its gradients first does. Other optimizers (L-BFGS, which re-evaluates it; third-party
    ones such as SAM) keep skorch's step, which passes one.
    """
    cls = type(optimizer)
    return (
        isinstance(optimizer, torch.optim.Optimizer)
        and cls.__module__.startswith("torch.optim.")
        and not isinstance(optimizer, torch.optim.LBFGS)
    )


class LeanStep:
    """``zero_grad`` / ``backward`` / ``step`` of ``optimizer`` with the least per-batch Python.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The optimizer of the net (its ``step`` is used whenever the fused call does not apply).
    """

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.params = []
        self.calls = None
        self._ones = {}

    def prepare(self):
        """Collect the parameters, and the fused call's lists where they apply."""
        opt = self.optimizer
        self.params = [p for group in opt.param_groups for p in group["params"]]
        self.calls = None
        if type(opt) not in (torch.optim.Adam, torch.optim.AdamW) or not _no_hooks(opt):
            return
        decoupled = type(opt) is torch.optim.AdamW
        calls = []
        for group in opt.param_groups:
            call = _fused_group(group, opt.state, decoupled)
            if call is None:
                return
            calls.append((group, *call))
        self.calls = calls

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def backward(self, output, grad=None):
        """``output.backward(grad)`` without the wrapper's argument handling.

        ``grad`` None means 1 for a scalar ``output`` (a loss); otherwise ``grad`` has
        ``output``'s shape, dtype and device -- e.g. the closed-form gradient of a loss with
        respect to the logits ``output``, which then needs no autograd node of its own.
        """
        if (
            _run_backward is None
            or type(output) is not torch.Tensor
            or output.device.type not in _LEAN_DEVICES
            or (grad is None and output.dim() != 0)
        ):
            output.backward(grad)
            return
        if grad is None:
            key = (output.dtype, output.device)
            grad = self._ones.get(key)
            if grad is None:
                grad = self._ones[key] = torch.ones((), dtype=output.dtype, device=output.device)
        _run_backward((output,), (grad,), False, False, (), True, True)

    def step(self):
        calls = self.calls
        if calls is None:
            self.optimizer.step()
            if not self.optimizer.state:
                return
            self.prepare()  # the first step initialised the state: lean from the next one
            if self.calls is None:
                self.calls = False  # not applicable: do not try again this epoch
            return
        if calls is False:
            self.optimizer.step()
            return
        for group, kernel, (params, exp_avgs, exp_avg_sqs, max_sqs, steps), shared in calls:
            grads = [p.grad for p in params]
            if any(g is None for g in grads):  # torch's step skips such parameters
                self.optimizer.step()
                self.calls = False  # torch's step for the rest of the epoch
                return
            beta1, beta2 = group["betas"]
            with torch.no_grad():
                shared.add_(1)
                kernel(
                    params,
                    grads,
                    exp_avgs,
                    exp_avg_sqs,
                    max_sqs,
                    steps,
                    amsgrad=False,
                    lr=group["lr"],
                    beta1=beta1,
                    beta2=beta2,
                    weight_decay=group["weight_decay"],
                    eps=group["eps"],
                    maximize=group["maximize"],
                    grad_scale=None,
                    found_inf=None,
                )
