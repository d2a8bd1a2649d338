"""Default MLP, user modules (class or instance) and the prior output bias."""

import functools
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from skfocal._module import MLP, CosineLinear, build_module, init_output_bias
from skfocal._targets import MULTICLASS


def test_mlp_shapes_and_dropout():
    mlp = MLP(5, 3, hidden_layer_sizes=(8, 4), dropout=0.2)
    assert mlp(torch.zeros(7, 5)).shape == (7, 3)
    assert sum(isinstance(m, nn.Dropout) for m in mlp.modules()) == 2
    assert (
        len([m for m in MLP(5, 1, hidden_layer_sizes=()).modules() if isinstance(m, nn.Linear)])
        == 1
    )


class Sized(nn.Module):
    def __init__(self, n_features, n_outputs, width=4):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, width), nn.Linear(width, n_outputs))

    def forward(self, X):
        return self.net(X)


class Fixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.out = nn.Linear(3, 2)

    def forward(self, X):
        return self.out(X)


class Kwargs(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs
        self.out = nn.Linear(kwargs["n_features"], kwargs["n_outputs"])


def test_build_module_from_class_and_instance():
    assert build_module(Sized, 6, 2, (64,), 0.0)(torch.zeros(1, 6)).shape == (1, 2)
    assert isinstance(build_module(Fixed, 3, 2, (64,), 0.0), Fixed)
    assert build_module(Kwargs, 3, 2, (64,), 0.0).kwargs == {"n_features": 3, "n_outputs": 2}
    instance = Fixed()
    copy = build_module(instance, 3, 2, (64,), 0.0)
    assert copy is not instance
    assert torch.equal(copy.out.weight, instance.out.weight)
    with pytest.raises(
        TypeError,
        match=r"module must be None, an nn.Module subclass, a callable returning an "
        r"nn.Module or an nn.Module instance, got 3",
    ):
        build_module(3, 3, 2, (64,), 0.0)


def test_build_module_from_factory_and_partial():
    built = build_module(functools.partial(Sized, width=7), 6, 2, (64,), 0.0)
    assert built.net[0].out_features == 7
    assert built(torch.zeros(1, 6)).shape == (1, 2)

    def factory(n_outputs):
        return nn.Linear(5, n_outputs)

    assert build_module(factory, 5, 3, (64,), 0.0).out_features == 3
    with pytest.raises(TypeError, match=r"module must build an nn.Module; calling .* returned int"):
        build_module(lambda: 3, 5, 3, (64,), 0.0)


@pytest.mark.parametrize(
    ("factory", "signature"),
    [
        (lambda f, o: nn.Linear(f, o), r"\(f, o\)"),
        (nn.Linear, r"\(in_features: int, out_features: int, bias: bool = True"),
        (lambda n_features, n_outputs, width: None, r"\(n_features, n_outputs, width\)"),
    ],
)
def test_factory_with_other_argument_names_names_module_and_signature(factory, signature):
    with pytest.raises(
        TypeError,
        match=r"module=.* cannot be built: a module class or factory receives n_features=5 and "
        rf"n_outputs=2 by keyword, .* but its signature is {signature}.*\. Name its parameters "
        r"n_features and n_outputs",
    ):
        build_module(factory, 5, 2, (64,), 0.0)


def test_factory_error_without_n_features_for_dict_inputs():
    with pytest.raises(TypeError, match=r"receives n_outputs=3 by keyword, .*signature is \(o\)"):
        build_module(lambda o: nn.Linear(4, o), None, 3, (64,), 0.0)


def test_error_inside_a_factory_is_not_masked():
    def factory(n_features, n_outputs):
        raise TypeError("my own bug")

    with pytest.raises(TypeError, match=r"^my own bug$"):
        build_module(factory, 5, 2, (64,), 0.0)


def test_init_output_bias_and_missing_layer_warning():
    mlp = MLP(4, 3)
    init_output_bias(mlp, "prior", [0.5, 0.25, 0.25], MULTICLASS, 3)
    np.testing.assert_allclose(
        torch.softmax(mlp.layers[-1].bias, 0).detach(), [0.5, 0.25, 0.25], rtol=1e-6
    )
    init_output_bias(mlp, "zero", None, MULTICLASS, 3)
    assert torch.count_nonzero(mlp.layers[-1].bias) == 0

    class NoLinear(nn.Module):
        def forward(self, X):
            return X

    with pytest.warns(
        UserWarning,
        match=r"bias_init='prior' was not applied: the module has "
        r"no nn.Linear layer with 3 output\(s\)",
    ):
        init_output_bias(NoLinear(), "prior", [0.5, 0.25, 0.25], MULTICLASS, 3)


# ---------------------------------------------------------------- cosine output layer


def test_default_output_layer_is_linear_with_bias():
    mlp = MLP(5, 3)
    assert isinstance(mlp.layers[-1], nn.Linear) and mlp.layers[-1].bias is not None
    assert not any(isinstance(m, CosineLinear) for m in mlp.modules())


def test_cosine_layer_equals_reference_normed_linear(seed):
    """LDAM-DRW's NormedLinear: F.normalize(x, dim=1).mm(F.normalize(weight, dim=0))."""
    layer = CosineLinear(6, 4).double()
    x = torch.randn(10, 6, dtype=torch.float64, requires_grad=True)
    reference_weight = layer.weight.detach().t().clone().requires_grad_()  # (in, out)
    reference = F.normalize(x, dim=1).mm(F.normalize(reference_weight, dim=0))
    ours = layer(x)
    torch.testing.assert_close(ours, reference)
    (g_ours,) = torch.autograd.grad(ours.square().sum(), x)
    (g_ref,) = torch.autograd.grad(reference.square().sum(), x)
    torch.testing.assert_close(g_ours, g_ref)
    assert bool((ours.abs() <= 1 + 1e-12).all())
    assert torch.autograd.gradcheck(layer, (x,))


def test_cosine_mlp_shapes_no_bias_and_finite_gradient_at_zero(seed):
    mlp = MLP(5, 3, hidden_layer_sizes=(8,), output_layer="cosine")
    assert isinstance(mlp.layers[-1], CosineLinear)
    assert "bias=False" in repr(mlp.layers[-1])
    X = torch.zeros(4, 5, requires_grad=True)
    out = mlp(X)
    assert out.shape == (4, 3)
    out.sum().backward()
    assert bool(torch.isfinite(X.grad).all())
    assert MLP(5, 1, hidden_layer_sizes=(), output_layer="cosine")(torch.randn(2, 5)).shape == (
        2,
        1,
    )


def test_bad_output_layer():
    with pytest.raises(
        ValueError, match=r"output_layer must be one of \('linear', 'cosine'\), got 'normed'"
    ):
        MLP(3, 2, output_layer="normed")


def test_build_module_passes_output_layer_to_default_mlp_only():
    built = build_module(None, 4, 2, (8,), 0.0, output_layer="cosine")
    assert isinstance(built.layers[-1], CosineLinear)
    assert isinstance(build_module(None, 4, 2, (8,), 0.0).layers[-1], nn.Linear)
    user = nn.Linear(4, 2)
    assert isinstance(build_module(user, 4, 2, (8,), 0.0, output_layer="cosine"), nn.Linear)


def test_init_output_bias_skips_the_bias_free_cosine_layer():
    mlp = MLP(4, 3, hidden_layer_sizes=(3,), output_layer="cosine")  # hidden width == n_outputs
    hidden_bias = mlp.layers[0].bias.detach().clone()
    with pytest.warns(UserWarning, match=r"bias_init='prior' was not applied: the cosine output"):
        init_output_bias(mlp, "prior", [0.5, 0.25, 0.25], MULTICLASS, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        init_output_bias(mlp, "zero", None, MULTICLASS, 3)  # nothing to do, no warning
    torch.testing.assert_close(mlp.layers[0].bias.detach(), hidden_bias)  # hidden untouched


@pytest.mark.parametrize("output_layer", ["linear", "cosine"])
def test_forward_float64_is_the_float32_network_in_float64(seed, output_layer):
    mlp = MLP(5, 3, hidden_layer_sizes=(16, 8), output_layer=output_layer).eval()
    X = torch.randn(40, 5)
    z64 = mlp.forward_float64(X)
    assert z64.dtype == torch.float64 and mlp.layers[0].weight.dtype == torch.float32
    torch.testing.assert_close(z64.float(), mlp(X), rtol=1e-5, atol=1e-6)
    rows = torch.cat([mlp.forward_float64(X[i : i + 1]) for i in range(len(X))])
    torch.testing.assert_close(rows, z64, rtol=1e-13, atol=1e-13)  # batch-independent
