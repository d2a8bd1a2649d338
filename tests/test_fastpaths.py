"""The private-PyTorch room (skfocal/_fastpaths.py): probes, fallbacks, the switch, and proof
that the fast paths change only the speed.

CI runs the suite once more with ``SKFOCAL_FAST_PATHS=0`` (a subset covering every fast path);
the tests here also flip the switch in-process.
"""

import ast
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from _torch_support import CPU_FUSED_ADAM
from sklearn.datasets import make_classification

import skfocal
from skfocal import FocalClassifier, _fastpaths
from skfocal import losses as L
from skfocal._engines._stacked import StackedAdamW
from skfocal._engines._step import LeanStep

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PACKAGE = pathlib.Path(skfocal.__file__).parent
CPU = torch.device("cpu")

#: attributes of tensors, optimizers and torch modules that are torch internals
PRIVATE_ATTRIBUTES = {
    "_base",
    "_version",
    "_execution_engine",
    "_optimizer_step_pre_hooks",
    "_optimizer_step_post_hooks",
    "_global_optimizer_pre_hooks",
    "_global_optimizer_post_hooks",
    "_fused_adam_",
    "_fused_adamw_",
    "_are_functorch_transforms_active",
}
TORCH_ROOTS = {"torch", "nn", "F"}


@pytest.fixture
def fast_paths_on():
    previous = _fastpaths.set_enabled(True)
    yield
    _fastpaths.set_enabled(previous)


def _root(node):
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _private_uses(tree):
    """``(line, what)`` for every private torch name a module's code uses."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name = node.attr
            private = name.startswith("_") and not name.startswith("__")
            if name in PRIVATE_ATTRIBUTES or (private and _root(node.value) in TORCH_ROOTS):
                yield node.lineno, name
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "getattr" and len(node.args) >= 2:
                target, name = node.args[:2]
                if (
                    isinstance(name, ast.Constant)
                    and isinstance(name.value, str)
                    and name.value in PRIVATE_ATTRIBUTES | {"_C"}
                ):
                    yield node.lineno, f"getattr(..., {name.value!r})"
                elif (
                    _root(target) in TORCH_ROOTS
                    and isinstance(name, ast.Constant)
                    and str(name.value).startswith("_")
                ):
                    yield node.lineno, f"getattr(torch..., {name.value!r})"
            if node.func.id == "super" and node.args and _root(node.args[0]) in TORCH_ROOTS:
                yield node.lineno, "super(torch..., ...) (a base class's entry point)"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torch"):
            parts = node.module.split(".") + [alias.name for alias in node.names]
            if any(part.startswith("_") for part in parts):
                yield node.lineno, f"from {node.module} import ..."
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("torch") and any(
                    part.startswith("_") for part in alias.name.split(".")
                ):
                    yield node.lineno, f"import {alias.name}"


def test_private_torch_names_live_in_fastpaths_only():
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        uses = list(_private_uses(ast.parse(path.read_text())))
        if uses:
            found[str(path.relative_to(PACKAGE))] = uses
    assert set(found) == {"_fastpaths.py"}, found
    names = {what for _, what in found["_fastpaths.py"]}
    assert {"_execution_engine", "_version", "_are_functorch_transforms_active"} <= names


def test_import_probes_nothing():
    code = textwrap.dedent(
        """
        import skfocal, skfocal.losses
        from skfocal import _fastpaths
        assert _fastpaths._probes == {} and _fastpaths._enabled is None, _fastpaths._probes
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize(
    "value, expected", [("0", False), ("off", False), ("1", True), (None, True)]
)
def test_environment_switch(value, expected):
    env = {k: v for k, v in os.environ.items() if k != "SKFOCAL_FAST_PATHS"}
    if value is not None:
        env["SKFOCAL_FAST_PATHS"] = value
    code = "from skfocal import _fastpaths; print(_fastpaths.enabled())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.stdout.strip() == str(expected), out.stderr


def test_switched_off_every_accessor_gives_its_fallback():
    def public(*args):
        return "public"

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with _fastpaths.disabled():
        assert not _fastpaths.enabled()
        assert _fastpaths.function_apply(L._fused.FusedLoss, public) is public
        assert _fastpaths.run_backward() is None
        assert _fastpaths.fused_adam_kernel(True, CPU, torch.float32) is None
        assert _fastpaths.no_step_hooks(opt) is False
        assert _fastpaths.tensor_version(torch.zeros(1)) is None
        assert not any(v for k, v in _fastpaths.status().items())
    assert _fastpaths.enabled() == _fastpaths.set_enabled(_fastpaths.enabled())


def test_probes_on_this_torch(fast_paths_on):
    status = _fastpaths.status()
    # available in every supported torch (2.1 and later): a rename shows here first
    for name in ("function_apply", "run_backward", "step_hooks", "tensor_version"):
        assert status[name], name
    # the fused kernels have a CPU kernel exactly where torch's public fused step has one
    assert status["fused_adamw_cpu"] == CPU_FUSED_ADAM


def test_a_kernel_without_a_cpu_implementation_is_refused(fast_paths_on, monkeypatch):
    """torch 2.1-2.3: ``torch._fused_adamw_`` exists but raises on a CPU."""

    def no_cpu_kernel(*args, **kwargs):
        raise NotImplementedError("Could not run 'aot::_fused_adamw_' with arguments from 'CPU'")

    monkeypatch.setattr(torch, "_fused_adamw_", no_cpu_kernel)
    _fastpaths.set_enabled(True)  # forget earlier probes
    assert _fastpaths.fused_adam_kernel(True, CPU, torch.float32) is None
    # the lean step and the stacked optimizer take their public paths, with the same result
    torch.manual_seed(0)
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    opt_a = torch.optim.AdamW(a.parameters(), foreach=False)
    opt_b = torch.optim.AdamW(b.parameters(), foreach=False)
    stepper = LeanStep(opt_b)
    X = torch.randn(8, 3)
    for _ in range(3):
        opt_a.zero_grad()
        a(X).square().mean().backward()
        opt_a.step()
        stepper.prepare()
        stepper.zero_grad()
        stepper.backward(b(X).square().mean())
        stepper.step()
    assert not stepper.calls
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    params = torch.zeros(2, 3)
    opt = StackedAdamW(params, torch.ones(2, 3), lr=0.1, weight_decay=0.0)
    assert opt._fused is None
    opt.step()
    torch.testing.assert_close(params, torch.full((2, 3), -0.1))


def test_a_global_step_hook_keeps_torchs_step(fast_paths_on):
    fused = CPU_FUSED_ADAM
    calls = []
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    handle = register_optimizer_step_pre_hook(lambda *args: calls.append(1))
    try:
        model = torch.nn.Linear(3, 2)
        opt = torch.optim.AdamW(model.parameters(), fused=fused)
        assert not _fastpaths.no_step_hooks(opt)
        stepper = LeanStep(opt)
        for _ in range(4):
            stepper.prepare()
            stepper.zero_grad()
            stepper.backward(model(torch.ones(2, 3)).sum())
            stepper.step()
        assert len(calls) == 4 and not stepper.calls
    finally:
        handle.remove()
    assert _fastpaths.no_step_hooks(opt) is True


@pytest.mark.parametrize("on", [True, False])
def test_a_buffer_changed_in_place_is_seen(on):
    previous = _fastpaths.set_enabled(on)
    try:
        criterion = L.FocalLoss(gamma=2.0, alpha=torch.tensor([1.0, 1.0, 1.0]), reduction="sum")
        x, t = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
        before = criterion(x, t)
        criterion.alpha.mul_(2.0)
        torch.testing.assert_close(criterion(x, t), 2 * before)
    finally:
        _fastpaths.set_enabled(previous)


def _fit_outputs(dtype, multiclass, **params):
    X, y = make_classification(
        n_samples=300,
        n_features=6,
        n_informative=4,
        n_classes=3 if multiclass else 2,
        weights=[0.6, 0.3, 0.1] if multiclass else [0.85, 0.15],
        random_state=0,
    )
    clf = FocalClassifier(max_epochs=6, batch_size=32, dtype=dtype, random_state=0, **params).fit(
        X, y
    )
    return clf.predict_proba(X), np.asarray(clf.net_.history[:, "train_loss"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "multiclass, params",
    [
        (False, {}),
        (True, {"alpha": "balanced"}),
        (False, {"class_weight": "balanced", "loss": "cross_entropy"}),
        (True, {"sampler": "oversample", "optimizer": torch.optim.Adam}),
    ],
)
def test_fits_are_bit_identical_with_the_fast_paths_off(dtype, multiclass, params):
    previous = _fastpaths.set_enabled(True)
    try:
        fast = _fit_outputs(dtype, multiclass, **params)
        _fastpaths.set_enabled(False)
        public = _fit_outputs(dtype, multiclass, **params)
    finally:
        _fastpaths.set_enabled(previous)
    for a, b in zip(fast, public, strict=True):
        np.testing.assert_array_equal(a, b)


# -- torch.func and torch.compile: the paths the Function.apply bypass must hand over --------

_XM = torch.randn(8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
_T = torch.tensor([0, 1, 2, 3, 0, 1, 1, 3])
_XB = torch.randn(8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
_YB = torch.tensor([1.0, 0, 0, 1, 0, 0, 1, 0], dtype=torch.float64)
_W4 = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)
LOSSES = {
    "focal": (_XM, lambda a: L.focal_loss(a, _T, gamma=0.5, alpha=_W4)),
    "focal_none": (_XM, lambda a: L.focal_loss(a, _T, gamma=2.0, reduction="none").sum()),
    "cross_entropy": (_XM, lambda a: L.focal_loss(a, _T, gamma=0.0)),
    "binary_focal": (_XB, lambda a: L.binary_focal_loss_with_logits(a, _YB, alpha=0.25)),
    "binary_focal_soft": (_XB, lambda a: L.binary_focal_loss_with_logits(a, 0.8 * _YB)),
    "margin": (_XM, lambda a: L.margin_loss(a, _T, softness=0.1)),
    "ldam": (_XM, lambda a: L.ldam_loss(a, _T, margins=_W4 / 10)),
    "logit_adjusted": (_XM, lambda a: L.logit_adjusted_loss(a, _T, prior=_W4 / _W4.sum())),
    "poly1": (_XM, lambda a: L.poly1_loss(a, _T)),
    "asymmetric": (_XB, lambda a: L.binary_asymmetric_loss_with_logits(a, _YB)),
    "module": (_XB, lambda a: L.BinaryFocalLoss(gamma=1.0, pos_weight=torch.tensor(3.0))(a, _YB)),
}


def _autograd_grad(x, loss):
    x = x.clone().requires_grad_(True)
    loss(x).backward()
    return x.grad


@pytest.mark.parametrize("on", [True, False])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_torch_func_reverse_mode(name, on):
    x, loss = LOSSES[name]
    previous = _fastpaths.set_enabled(on)
    try:
        expected = _autograd_grad(x, loss)
        torch.testing.assert_close(torch.func.grad(loss)(x), expected, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(torch.func.jacrev(loss)(x), expected, rtol=1e-12, atol=1e-14)
        value, vjp = torch.func.vjp(loss, x)
        torch.testing.assert_close(vjp(torch.ones_like(value))[0], expected)
    finally:
        _fastpaths.set_enabled(previous)


@pytest.mark.parametrize("on", [True, False])
@pytest.mark.parametrize("name", ["focal", "binary_focal", "asymmetric"])
def test_second_derivatives_raise_instead_of_being_wrong(name, on):
    """The closed-form backward has no derivative of its own: a hessian through it would
    silently leave out the gradient's dependence on the logits, so it raises."""
    x, loss = LOSSES[name]
    previous = _fastpaths.set_enabled(on)
    try:
        xr = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(loss(xr), xr, create_graph=True)
        with pytest.raises(RuntimeError):
            torch.autograd.grad(g.sum(), xr)
        with pytest.raises((RuntimeError, NotImplementedError), match="jvp"):
            torch.func.hessian(loss)(x)
    finally:
        _fastpaths.set_enabled(previous)


@pytest.mark.parametrize("name", ["focal", "binary_focal", "asymmetric"])
def test_torch_compile_smoke(name):
    x, loss = LOSSES[name]
    compiled = torch.compile(loss, backend="aot_eager")
    xc = x.clone().requires_grad_(True)
    value = compiled(xc)
    value.backward()
    torch.testing.assert_close(value.detach(), loss(x))
    torch.testing.assert_close(xc.grad, _autograd_grad(x, loss))
