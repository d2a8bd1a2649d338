"""Input forms (float, ids, dict): skfocal._inputs._forms, host- and module-side helpers."""

import re

import numpy as np
import pytest
import torch
from skorch.helper import SliceDict

from skfocal._engines._net import predict_logits
from skfocal._inputs import (
    DICT,
    FLOAT,
    IDS,
    InputSpec,
    check_dict,
    check_forward,
    check_predict_form,
    check_signature,
    forward,
    input_spec,
    is_integer_input,
    logits_of,
    n_features,
    n_rows,
    output_like,
    take,
    to_device,
)
from skfocal._targets import MULTICLASS

from ._modules import Bag, Features, Kwargs, MappingBag, _text_ids

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_input_spec_decides_the_form():
    ints, floats = np.zeros((3, 2), dtype=np.int32), np.zeros((3, 2))
    assert input_spec(ints, None).form == FLOAT  # the default MLP casts integers
    assert input_spec(ints, Bag, 16).form == IDS and input_spec(ints, Bag, 16).batch_rows == 16
    assert input_spec(floats, Bag).form == FLOAT
    assert input_spec(torch.zeros(3, 2, dtype=torch.long), Bag).form == IDS
    assert input_spec(torch.zeros(3, 2, dtype=torch.bool), Bag).form == FLOAT
    spec = input_spec(SliceDict(a=ints, b=floats), None, 8)
    assert (spec.form, spec.keys, spec.batch_rows) == (DICT, ("a", "b"), 8)
    assert not spec.tabular and not spec.cast_integers
    assert InputSpec(IDS).validate_dtype is np.int64
    assert InputSpec(FLOAT).validate_dtype == [np.float32, np.float64]
    assert InputSpec(FLOAT).predict_options() == {"cast_integers": True}
    assert spec.predict_options() == {"cast_integers": False, "batch_rows": 8}


def test_is_integer_input():
    pd = pytest.importorskip("pandas")
    assert is_integer_input(np.arange(4, dtype=np.uint8).reshape(2, 2))
    assert is_integer_input([[1, 2], [3, 4]])
    assert not is_integer_input([[1.0, 2], [3, 4]])
    assert not is_integer_input(np.zeros((2, 2), dtype=bool))
    assert is_integer_input(pd.DataFrame({"a": [1, 2], "b": [3, 4]}))
    assert not is_integer_input(pd.DataFrame({"a": [1, 2], "b": [3.0, 4.0]}))
    assert not is_integer_input([[1], [2, 3]])  # ragged: validate_data reports it


def test_check_dict_returns_plain_dict_with_int64_ids(seed):
    ids = seed.integers(0, 9, size=(4, 3)).astype(np.int32)
    mask = torch.ones(4, 3, dtype=torch.long)
    out = check_dict(SliceDict(input_ids=ids, mask=mask), "fit")
    assert type(out) is dict and list(out) == ["input_ids", "mask"]
    assert out["input_ids"].dtype == np.int64 and out["mask"] is mask
    assert check_dict({"v": [[1.0, 2.0], [3.0, 4.0]]}, "fit")["v"].dtype == np.float64
    out = check_dict({"b": ids, "a": ids}, "predict", keys=("a", "b"))
    assert list(out) == ["b", "a"]


@pytest.mark.parametrize(
    ("X", "match"),
    [
        ({}, "X is an empty dict in fit"),
        ({1: np.zeros((2, 2))}, re.escape("keys of a dict X must be strings") + ".*got \\[1\\]"),
        ({"a": [[1, 2], [3]]}, re.escape("X['a'] is ragged") + ".*padding=True"),
        ({"a": np.array([[1], [2, 3]], dtype=object)}, re.escape("X['a'] is ragged")),
        ({"a": np.zeros((3, 2)), "b": np.zeros((2, 2))}, "same number of rows.*'a': 3, 'b': 2"),
        ({"a": np.float32(1.0)}, re.escape("X['a'] is a scalar")),
        ({"a": torch.tensor(1.0)}, re.escape("X['a'] is a 0-d tensor")),
        ({"a": np.array([["x"], ["y"]])}, re.escape("X['a'] has dtype <U1")),
        ({"a": np.array([[np.nan]])}, re.escape("X['a'] contains NaN or infinity")),
        ({"a": torch.tensor([[np.inf]])}, re.escape("X['a'] contains NaN or infinity")),
        ({"a": torch.zeros(2, 2, dtype=torch.complex64)}, re.escape("X['a'] is a complex")),
        ({"a": np.zeros((0, 2))}, "dict X with 0 sample"),
    ],
)
def test_check_dict_errors(X, match):
    with pytest.raises(ValueError, match=match):
        check_dict(X, "fit")


def test_check_dict_at_predict_time():
    with pytest.raises(ValueError, match=r"X has keys \['a'\] in predict.*fitted with keys"):
        check_dict({"a": np.zeros((2, 2))}, "predict", keys=("a", "b"))
    with pytest.raises(ValueError, match="fitted on a dict X with keys.*predict got ndarray"):
        check_dict(np.zeros((2, 2)), "predict", keys=("a",))


def test_check_predict_form():
    check_predict_form(InputSpec(IDS), np.zeros((2, 2), dtype=np.int16), "predict")
    with pytest.raises(ValueError, match="fitted on a 2-D array X; predict got a dict"):
        check_predict_form(InputSpec(FLOAT), {"a": np.zeros((2, 2))}, "predict")
    with pytest.raises(ValueError, match="fitted on integer X .* got X of dtype float64"):
        check_predict_form(InputSpec(IDS), np.zeros((2, 2)), "predict_proba")


def test_rows_take_and_features(seed):
    X = {"a": torch.arange(10).reshape(5, 2), "b": np.arange(5)}
    assert n_rows(X) == 5 and n_features(X) is None and n_features(np.zeros((5, 3))) == 3
    part = take(X, slice(1, 3))
    assert part["a"].tolist() == [[2, 3], [4, 5]] and part["b"].tolist() == [1, 2]
    rows = take({"a": X["a"]}, torch.tensor([4, 0]))
    assert rows["a"].tolist() == [[8, 9], [0, 1]]
    assert take(np.arange(5), np.array([3]))[0] == 3


def test_to_device_dtype_rules():
    ints = np.array([[2**40 + 1]], dtype=np.int64)
    cpu = torch.device("cpu")
    assert to_device(ints, cpu, torch.float32, cast_integers=False).item() == 2**40 + 1
    assert to_device(ints, cpu, torch.float64, cast_integers=True).dtype == torch.float64
    out = to_device(
        {"i": ints.astype(np.int32), "f": np.zeros((1, 2)), "m": np.ones((1, 1), dtype=bool)},
        cpu,
        torch.float32,
        cast_integers=True,  # ignored inside a dict
    )
    assert (out["i"].dtype, out["f"].dtype, out["m"].dtype) == (
        torch.int64,
        torch.float32,
        torch.bool,
    )
    t = torch.zeros(2, 2)
    assert to_device(t, cpu, torch.float32, cast_integers=True) is t  # nothing to copy


def test_logits_of_and_forward():
    z = torch.zeros(2, 3)

    class Output:  # an object with a logits attribute (e.g. a dataclass output)
        logits = z

    assert logits_of(z) is z and logits_of({"logits": z, "loss": None}) is z
    assert logits_of(Output()) is z
    with pytest.raises(TypeError, match="mapping .* with a 'logits' entry; it returned tuple"):
        logits_of((z,))
    module = MappingBag(3)
    ids = torch.zeros(2, 4, dtype=torch.long)
    assert forward(module, {"input_ids": ids}).shape == (2, 3)


def test_output_like():
    assert output_like({"a": torch.zeros(2)}, torch.float32) == (
        True,
        torch.device("cpu"),
        torch.float32,
    )
    assert output_like({"a": torch.zeros(2), "b": np.zeros(2)}, torch.float32)[0] is False
    assert output_like(np.zeros(2, dtype=np.int64), torch.float32)[2] == np.float64
    assert output_like(torch.zeros(2, dtype=torch.float64), torch.float32)[2] == torch.float64


def test_check_signature():
    check_signature(Bag(2), ("input_ids", "attention_mask"))
    check_signature(Kwargs(2), ("anything",))
    with pytest.raises(ValueError, match=r"Bag.forward does not accept the key\(s\) \['ids'\]"):
        check_signature(Bag(2), ("ids",))
    with pytest.raises(ValueError, match=r"forward requires \['input_ids'\], which X does not"):
        check_signature(Bag(2), ("attention_mask",))


def test_check_forward_leaves_rng_and_modes_alone(seed):
    module = Features(3)
    module.net[2].eval()  # a submodule mode set by the user survives the check
    X = {"x": torch.as_tensor(seed.normal(size=(5, 5)), dtype=torch.float32)}
    state = torch.get_rng_state()
    check_forward(module, X, InputSpec(DICT, keys=("x",)), MULTICLASS, 3, torch.float32)
    assert torch.equal(torch.get_rng_state(), state)
    assert module.training and not module.net[2].training and module.net[0].training


@pytest.mark.parametrize(
    ("module", "X", "keys", "match"),
    [
        (Bag(4), {"input_ids": torch.zeros(3, 2, dtype=torch.long)}, ("input_ids",), "shape"),
        (Bag(2), {"input_ids": torch.full((3, 2), 99)}, ("input_ids",), "IndexError"),
        (Kwargs(2), {"input_ids": torch.zeros(3, 2, dtype=torch.long)}, ("input_ids",), None),
    ],
)
def test_check_forward_errors(module, X, keys, match):
    spec = InputSpec(DICT, keys=keys)
    if match is None:
        check_forward(module, X, spec, MULTICLASS, 2, torch.float32)
    elif match == "shape":
        with pytest.raises(ValueError, match=r"logits of shape \(2, 4\) for 2 row.*num_labels"):
            check_forward(module, X, spec, MULTICLASS, 2, torch.float32)
    else:
        with pytest.raises(ValueError, match=r"dry forward of the first 2 row\(s\).*IndexError"):
            check_forward(module, X, spec, MULTICLASS, 2, torch.float32)


def test_check_forward_hints_at_float_features_for_ids():
    spec = InputSpec(IDS)
    with pytest.raises(ValueError, match=r"int64 ids.*pass X.astype\('float32'\)"):
        check_forward(
            Features(2), torch.zeros(3, 5, dtype=torch.long), spec, MULTICLASS, 2, torch.float32
        )
    check_forward(Features(2), torch.zeros(3, 5), InputSpec(FLOAT), MULTICLASS, 2, torch.float32)


@pytest.mark.parametrize("batch_rows", [1, 7, 1000])
def test_predict_logits_streams_dicts(seed, batch_rows):
    ids, mask, _ = _text_ids(seed, n=30)
    module = MappingBag(3)
    X = {"input_ids": ids, "attention_mask": mask}
    z = predict_logits(
        module, X, kind=MULTICLASS, device="cpu", dtype=torch.float32, batch_rows=batch_rows
    )
    with torch.no_grad():
        ref = module(torch.as_tensor(ids), torch.as_tensor(mask))["logits"]
    assert z.dtype == np.float64 and z.shape == (30, 3)
    np.testing.assert_allclose(z, ref.double().numpy(), rtol=1e-5, atol=1e-6)
