r"""Private PyTorch calls that buy measured speed, in one room.

Everything else in skfocal uses PyTorch through its public surface. The few internals that
make a small network's training step measurably faster live here, each behind one accessor
that

* probes the internal **once, lazily** (the first time it is asked for, never at
  ``import skfocal``): it exists, takes the arguments skfocal passes, runs on the device and
  dtype at hand (a CPU kernel where the call is on a CPU) and gives the public call's result;
* returns the **public call as its fallback** (or ``None``, telling the caller to take its
  public path) when the probe fails or the fast paths are switched off.

The switch turns every fast path off at once: the environment variable
``SKFOCAL_FAST_PATHS=0`` (read at the first probe), or :func:`set_enabled` /
:func:`disabled` at run time (tests run the suite both ways). With the fast paths off, skfocal
trains through ``optimizer.step()``, ``Tensor.backward`` and ``Function.apply`` -- the same
kernels, so the results are the same bit for bit (``tests/test_fastpaths.py``); only the
Python around them costs more (``benchmarks/bench_fit.py --defaults`` prints both).

=========================  =====================================  =============================
accessor                   internal                               fallback
=========================  =====================================  =============================
:func:`function_apply`     ``_FunctionBase.apply`` (C++ entry of  ``Function.apply`` (also
                           ``autograd.Function.apply``) and       whenever a functorch
                           ``torch._C._are_functorch_transforms_  transform is active or
                           active``                               dynamo is compiling): the
                                                                  transformable Function
:func:`run_backward`       ``Variable._execution_engine           ``None``: ``Tensor.backward``
                           .run_backward``
:func:`fused_adam_kernel`  ``torch._fused_adam_`` /               ``None``: ``optimizer.step()``
                           ``torch._fused_adamw_``                or the stacked optimizer's
                                                                  elementwise update
:func:`no_step_hooks`      ``Optimizer._optimizer_step_pre/post_  ``False``: the caller keeps
                           hooks`` and ``torch.optim.optimizer    ``optimizer.step()`` (which
                           ._global_optimizer_pre/post_hooks``    runs the hooks)
:func:`tensor_version`     ``Tensor._version``                    ``None``: no cache keyed on
                                                                  the tensor's contents
=========================  =====================================  =============================
"""

from __future__ import annotations

import contextlib
import os

import torch

_ENV = "SKFOCAL_FAST_PATHS"
_OFF = ("0", "false", "no", "off")

_enabled = None  # None: not read yet (the environment variable decides at the first probe)
_probes = {}


def enabled():
    """Whether the fast paths are on (``SKFOCAL_FAST_PATHS`` unset or not ``0``)."""
    global _enabled
    if _enabled is None:
        _enabled = os.environ.get(_ENV, "1").strip().lower() not in _OFF
    return _enabled


def set_enabled(flag):
    """Switch every fast path on or off; returns the previous setting.

    Probes are forgotten, so that switching on probes again. Objects that already chose a
    path (a running epoch's step, a stacked optimizer) keep it; new ones follow the switch.
    """
    global _enabled
    previous = enabled()
    _enabled = bool(flag)
    _probes.clear()
    return previous


@contextlib.contextmanager
def disabled():
    """Context manager: every fast path off inside, the previous setting restored after."""
    previous = set_enabled(False)
    try:
        yield
    finally:
        set_enabled(previous)


def _probed(key, probe):
    """``probe()``'s result, computed once per key; None when it raises or when switched off."""
    if not enabled():
        return None
    if key not in _probes:
        try:
            _probes[key] = probe()
        except Exception:  # noqa: BLE001 -- any failure means: take the public path
            _probes[key] = None
    return _probes[key]


def status():
    """``{name: bool}``: which fast paths this process would use on the CPU (for reports)."""
    return {
        "enabled": enabled(),
        "function_apply": _probed("function_apply", _probe_function_apply) is not None,
        "run_backward": run_backward() is not None,
        "fused_adamw_cpu": fused_adam_kernel(True, torch.device("cpu"), torch.float32) is not None,
        "fused_adam_cpu": fused_adam_kernel(False, torch.device("cpu"), torch.float32) is not None,
        "step_hooks": _probed("step_hooks", _probe_step_hooks) is not None,
        "tensor_version": _probed("tensor_version", _probe_tensor_version) is not None,
    }


# -- Function.apply ---------------------------------------------------------------------------


class _Square(torch.autograd.Function):
    """The probe's Function: ``x * x`` with its gradient."""

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return x * x

    @staticmethod
    def backward(ctx, grad):
        return 2 * ctx.x * grad


def _is_compiling():
    compiler = getattr(torch, "compiler", None)
    check = getattr(compiler, "is_compiling", None)  # public from torch 2.3
    if check is None:  # torch 2.1-2.2
        from torch import _dynamo

        check = _dynamo.is_compiling
    return check


def _probe_function_apply():
    c_apply = super(torch.autograd.Function, _Square).apply  # noqa: UP008 -- the C++ entry
    active = torch._C._are_functorch_transforms_active
    compiling = _is_compiling()
    if active() is not False or compiling() is not False:
        return None
    x = torch.tensor([1.5, -2.0], requires_grad=True)
    out = c_apply(x)
    out.sum().backward()
    if not (torch.equal(out.detach(), x.detach() ** 2) and torch.equal(x.grad, 2 * x.detach())):
        return None
    return active, compiling


def function_apply(function, public):
    """How to apply the ``autograd.Function`` subclass ``function``: ``apply(*args)``.

    ``Function.apply`` is a Python wrapper around the C++ entry point that matters only under
    functorch transforms (``vmap``, ``grad``) and ``torch.compile``; at a loss's training
    batch sizes the wrapper costs as much as two tensor operations. The fast path calls the
    C++ entry of ``function`` directly, and ``public(*args)`` -- a public call computing the
    same, which those transforms accept -- whenever a functorch transform is active or dynamo
    is compiling. With the fast paths off it is ``public`` itself.
    """
    apply = _probes.get(function)  # the hot path: one look-up per call
    if apply is not None:
        return apply
    probe = _probed("function_apply", _probe_function_apply)
    if probe is None:
        apply = public
    else:
        c_apply = super(torch.autograd.Function, function).apply  # noqa: UP008
        active, compiling = probe

        def apply(*args):
            if active() or compiling():
                return public(*args)
            return c_apply(*args)

    _probes[function] = apply
    return apply


# -- backward ---------------------------------------------------------------------------------


def _probe_run_backward():
    from torch.autograd import Variable

    engine_call = Variable._execution_engine.run_backward
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    out = (x * 3).sum()
    engine_call((out,), (torch.ones(()),), False, False, (), True, True)
    if not torch.equal(x.grad, torch.full((2,), 3.0)):
        return None
    return engine_call


def run_backward():
    """``run(tensors, grads)``: the autograd engine's call behind ``Tensor.backward``, or None.

    ``Tensor.backward`` adds about 25 us of argument handling (``_make_grads``, hooks of
    ``torch.autograd.backward``) to the engine's call; the lean step calls the engine with the
    arguments ``backward`` would pass (no retained graph, no double backward, accumulate into
    ``.grad``). None: call ``output.backward(grad)``.
    """
    engine_call = _probed("run_backward", _probe_run_backward)
    if engine_call is None:
        return None

    def run(tensors, grads):
        engine_call(tensors, grads, False, False, (), True, True)

    return run


# -- fused Adam(W) kernels --------------------------------------------------------------------


def _probe_fused_adam(decoupled, device_type, dtype):
    kernel = getattr(torch, "_fused_adamw_" if decoupled else "_fused_adam_")
    device = torch.device(device_type)
    reference_cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    start = torch.tensor([0.5, -1.0, 2.0], dtype=dtype, device=device)
    grad = torch.tensor([0.1, -0.3, 0.2], dtype=dtype, device=device)
    reference = start.clone().requires_grad_(True)
    opt = reference_cls([reference], lr=0.01, weight_decay=0.1, foreach=False)
    reference.grad = grad.clone()
    opt.step()
    param = start.clone()
    exp_avg, exp_avg_sq = torch.zeros_like(param), torch.zeros_like(param)
    step = torch.ones((), dtype=torch.float32, device=device)
    kernel(
        [param],
        [grad.clone()],
        [exp_avg],
        [exp_avg_sq],
        [],
        [step],
        amsgrad=False,
        lr=0.01,
        beta1=0.9,
        beta2=0.999,
        weight_decay=0.1,
        eps=1e-8,
        maximize=False,
        grad_scale=None,
        found_inf=None,
    )
    tolerance = 1e-6 if dtype == torch.float32 else 1e-12
    if not torch.allclose(param, reference.detach(), rtol=tolerance, atol=tolerance):
        return None
    return kernel


def fused_adam_kernel(decoupled, device, dtype):
    """torch's fused Adam (``decoupled=False``) or AdamW kernel for ``device`` and ``dtype``.

    The kernel ``Adam(fused=True).step()`` calls, checked once per device type and dtype
    against the single-tensor ``step`` (torch 2.1-2.3 have it, but with no CPU kernel). None:
    take the public path (``optimizer.step()``, or the stacked optimizer's elementwise update).
    """
    key = ("fused_adam", bool(decoupled), torch.device(device).type, dtype)
    return _probed(key, lambda: _probe_fused_adam(bool(decoupled), key[2], dtype))


# -- optimizer hooks --------------------------------------------------------------------------


def _probe_step_hooks():
    from torch.optim import optimizer as optimizer_module

    names = ("_global_optimizer_pre_hooks", "_global_optimizer_post_hooks")
    global_hooks = tuple(getattr(optimizer_module, name) for name in names)
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    own = (opt._optimizer_step_pre_hooks, opt._optimizer_step_post_hooks)
    # each public registration must show (one more entry) where the fast path looks
    registrations = (
        (opt.register_step_pre_hook, own[0]),
        (opt.register_step_post_hook, own[1]),
        (optimizer_module.register_optimizer_step_pre_hook, global_hooks[0]),
        (optimizer_module.register_optimizer_step_post_hook, global_hooks[1]),
    )
    for register, seen in registrations:
        before = len(seen)
        handle = register(lambda *args: None)
        try:
            shown = len(seen) == before + 1
        finally:
            handle.remove()
        if not shown or len(seen) != before:
            return None
    return global_hooks


def no_step_hooks(optimizer):
    """Whether no step hook (the optimizer's own or torch's global ones) is registered.

    A step that bypasses ``optimizer.step()`` must not skip a user's hooks. Where the hook
    registries cannot be read (fast paths off, or a torch that renamed them) this says False,
    so the caller keeps ``optimizer.step()``.
    """
    global_hooks = _probed("step_hooks", _probe_step_hooks)
    if global_hooks is None:
        return False
    own = (
        getattr(optimizer, "_optimizer_step_pre_hooks", None),
        getattr(optimizer, "_optimizer_step_post_hooks", None),
    )
    if any(hooks is None for hooks in own):
        return False
    return not (any(own) or any(global_hooks))


# -- tensor versions --------------------------------------------------------------------------


def _probe_tensor_version():
    t = torch.zeros(2)
    before = t._version
    t.add_(1)
    if not (isinstance(before, int) and t._version > before):
        return None
    return True


def tensor_version(tensor):
    """The in-place modification counter of ``tensor``, or None (then do not cache on it).

    A loss module caches the weight tensors derived from its ``alpha`` / ``pos_weight``
    buffers; the counter tells when a user changed a buffer in place.
    """
    if _probed("tensor_version", _probe_tensor_version) is None:
        return None
    return tensor._version
