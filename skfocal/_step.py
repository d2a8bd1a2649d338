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
  what ``loss.backward()`` does after its argument checks (on a CPU, for a plain tensor,
  where :func:`skfocal._fastpaths.run_backward` offers the engine's call; otherwise
  ``loss.backward()`` itself);
* ``step``: for torch's own ``Adam`` / ``AdamW`` with ``fused=True`` on a CPU, calls the very
  kernel torch's step calls (:func:`skfocal._fastpaths.fused_adam_kernel`) with lists built
  once per epoch from the optimizer's own state, after adding 1 to the step counts -- the
  same update, bit for bit, on the same state tensors. Anything else (another optimizer,
  AMSGrad, step hooks or hook registries that cannot be read, a tensor learning rate, a
  parameter without a gradient, uninitialised state, a GPU, a torch without a CPU kernel, the
  fast paths switched off) goes through ``optimizer.step()``.

The step counts of a group become elements of one 1-d tensor made here (the optimizer's state
then holds views of it), so that one ``add_`` counts a step for every parameter; the views are
recognised by identity at the next epoch.

The lists are rebuilt by :meth:`LeanStep.prepare` at the start of every epoch, so state that
a callback replaces between epochs (``load_state_dict``, a learning-rate schedule's new
``lr``, which is read at every step anyway) is picked up. Within an epoch nothing else can
touch the optimizer: the lean loop runs only when no callback listens to per-batch events.
"""

from __future__ import annotations

import torch

from . import _fastpaths

_LEAN_DEVICES = ("cpu",)


def _fused_group(group, state, decoupled_default, shared_steps):
    """The kernel call of one param group as ``(kernel, lists, shared)``, or None.

    ``lists`` are the kernel's tensor lists (parameters, moments, no AMSGrad maxima, step
    counts); ``shared`` is the 1-d tensor whose elements the step counts are: ``shared_steps``
    (the one this step made for the group at an earlier epoch) while the state still holds
    its elements, else a new one.

    None when the group is not a fused, plain (no AMSGrad, not differentiable or capturable),
    float-``lr`` group of initialised, real, same-device same-dtype CPU parameters, or when
    torch's fused kernel cannot be used there (:func:`~skfocal._fastpaths.fused_adam_kernel`).
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
    decoupled = bool(group.get("decoupled_weight_decay", decoupled_default))
    kernel = _fastpaths.fused_adam_kernel(decoupled, first.device, first.dtype)
    if kernel is None:
        return None
    steps = [s["step"] for s in states]
    shared = _still_shared(shared_steps, steps)
    if shared is None:  # one tensor of every count: one add per step instead of a foreach add
        shared = torch.stack([t.detach() for t in steps])
        for i, s in enumerate(states):
            s["step"] = shared[i]
        steps = [s["step"] for s in states]
        shared = (shared, steps)
    lists = (params, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], [], steps)
    return kernel, lists, shared


def _still_shared(shared_steps, steps):
    """``shared_steps`` when ``steps`` are still, one by one, the views it made; else None."""
    if shared_steps is None:
        return None
    _, views = shared_steps
    if len(views) != len(steps) or any(a is not b for a, b in zip(views, steps, strict=True)):
        return None
    return shared_steps


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
        self._shared_steps = []
        self._run_backward = _fastpaths.run_backward()

    def prepare(self):
        """Collect the parameters, and the fused call's lists where they apply."""
        opt = self.optimizer
        self.params = [p for group in opt.param_groups for p in group["params"]]
        self.calls = None
        if type(opt) not in (torch.optim.Adam, torch.optim.AdamW):
            return
        if not _fastpaths.no_step_hooks(opt):
            return
        decoupled = type(opt) is torch.optim.AdamW
        calls, shared = [], self._shared_steps
        for index, group in enumerate(opt.param_groups):
            previous = shared[index] if index < len(shared) else None
            call = _fused_group(group, opt.state, decoupled, previous)
            if call is None:
                return
            calls.append((group, *call))
        self._shared_steps = [call[-1] for call in calls]
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
        run = self._run_backward
        if (
            run is None
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
        run((output,), (grad,))

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
                shared[0].add_(1)
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
