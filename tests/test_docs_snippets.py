"""The documentation's Python snippets, run as a reader would run them.

Every ``.. code-block:: python`` of the reStructuredText pages (``docs/*.rst`` and
``docs/user_guide/*.rst``) and every ```` ```python ```` block of ``README.md`` runs here: the
blocks of a page in order, in one namespace (a page reads top to bottom, so a later block may
use what an earlier one defined), in a temporary working directory, with scikit-learn's global
configuration and the environment variables restored afterwards. A block that raises fails
its page's test, with the page and line in the traceback; so does a block that emits a
``UserWarning``, which a reader would see (``fit`` warns, for example, about settings that
have no effect).

What the test reads besides the code blocks:

* **Hidden setup.** An rst comment whose text starts with ``snippet setup`` (README: an HTML
  comment ``<!-- snippet setup ... -->``) is code the reader does not see: everything after
  the first blank line of the comment runs where the comment stands, like a block. Pages use
  it for what their text takes as given -- ``X``, ``y``, a ``module`` -- kept small, so that
  the snippets train in seconds. ``snippet setup (fresh process)`` also runs the whole page in
  a new interpreter (Accelerate's state, mixed precision included, is global to a process).
* **Hidden teardown.** A comment starting with ``snippet teardown`` runs after the page's
  blocks, even when one failed (e.g. closing a Dask cluster).
* **Requirements.** A block whose first line is ``# requires: CUDA`` runs only in
  :func:`test_snippets_with_a_requirement_run`, marked ``gpu`` (skipped without a CUDA
  device), with the rest of its page; :func:`test_snippets_run` runs the page without it, so
  no other block may depend on it. ``# requires: network`` (a download) runs only when
  ``SKFOCAL_DOCS_NETWORK=1`` is set, and is reported as skipped otherwise.
* **Python outside code blocks.** :func:`test_python_examples_are_code_blocks` fails when a
  literal block (``::``) holds Python, which this test would not run.

Run one page by hand with ``python tests/test_docs_snippets.py docs/user_guide/tuning.rst``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import traceback
import types
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import sklearn

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.rst"))]
PAGES += sorted((ROOT / "docs" / "user_guide").glob("*.rst"))
REQUIREMENTS = {"cuda", "network"}


@dataclass
class Block:
    """One piece of a page's code: a visible block or a hidden setup / teardown."""

    page: Path
    line: int  # 1-based line of the page where the code starts
    code: str
    kind: str = "code"  # "code", "setup" or "teardown"
    fresh_process: bool = False

    @property
    def where(self):
        return f"{_relative(self.page)}:{self.line}"

    @property
    def requires(self):
        """``"cuda"``, ``"network"`` or None, from a first line ``# requires: ...``."""
        first = self.code.lstrip().split("\n", 1)[0]
        match = re.match(r"#\s*requires:\s*(\w+)", first)
        if match is None:
            return None
        need = match.group(1).lower()
        if need not in REQUIREMENTS:
            raise ValueError(f"{self.where}: unknown requirement {need!r}; use {REQUIREMENTS}")
        return need


def _relative(page):
    page = Path(page)
    return page.relative_to(ROOT) if page.is_relative_to(ROOT) else page


# -- reading pages -----------------------------------------------------------------------------
def _indented_body(lines, start, indent):
    """``(first line index, dedented text)`` of the block indented deeper than ``indent``."""
    end = start
    while end < len(lines) and (
        not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent
    ):
        end += 1
    body = lines[start:end]
    while body and not body[0].strip():
        body, start = body[1:], start + 1
    while body and not body[-1].strip():
        body = body[:-1]
    return start, textwrap.dedent("\n".join(body))


def _hidden(page, text, line):
    """A hidden setup/teardown block from a comment's text, or None for another comment."""
    match = re.match(r"snippet (setup|teardown)(\s*\(fresh process\))?", text)
    if match is None:
        return None
    head, sep, code = text.partition("\n\n")
    if not sep:
        raise ValueError(f"{_relative(page)}:{line}: a snippet comment needs a blank line")
    code_line = line + head.count("\n") + 2
    return Block(page, code_line, code, match.group(1), bool(match.group(2)))


def read_rst(page, text=None):
    """The code blocks and hidden blocks of an rst page, in document order."""
    page = Path(page)
    lines = (page.read_text() if text is None else text).splitlines()
    blocks, i = [], 0
    while i < len(lines):
        line = lines[i]
        indent = len(line) - len(line.lstrip())
        if re.match(r"\s*\.\. code-block::\s*python3?\s*$", line):
            j = i + 1
            while j < len(lines) and re.match(r"\s+:[\w-]+:", lines[j]):
                j += 1  # directive options
            start, code = _indented_body(lines, j, indent)
            blocks.append(Block(page, start + 1, code))
            i = start + code.count("\n") + 1
        elif re.match(r"\s*\.\.(\s|$)", line) and "::" not in line:  # a comment
            first = line.strip()[2:].strip()
            start, rest = _indented_body(lines, i + 1, indent)
            text_ = f"{first}\n{rest}" if first else rest
            hidden = _hidden(page, text_, (i + 1) if first else (start + 1))
            if hidden is not None:
                blocks.append(hidden)
            i = max(i + 1, start + rest.count("\n") + 1)
        else:
            i += 1
    return blocks


def read_markdown(page, text=None):
    """The ```` ```python ```` blocks and hidden ``<!-- snippet ... -->`` blocks of a page."""
    page = Path(page)
    lines = (page.read_text() if text is None else text).splitlines()
    blocks, i = [], 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"```\s*python\s*$", line):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            blocks.append(Block(page, i + 2, "\n".join(lines[i + 1 : end])))
            i = end + 1
        elif line.startswith("<!--") and "snippet" in line:
            end = next(j for j in range(i, len(lines)) if "-->" in lines[j])
            text_ = "\n".join(lines[i : end + 1])
            text_ = text_.removeprefix("<!--").strip().removesuffix("-->").rstrip()
            hidden = _hidden(page, text_, i + 1)
            if hidden is not None:
                blocks.append(hidden)
            i = end + 1
        else:
            i += 1
    return blocks


def read_page(page):
    return read_markdown(page) if Path(page).suffix == ".md" else read_rst(page)


def literal_python_blocks(page):
    """rst literal blocks (after ``::``) that hold Python: ``where`` strings."""
    lines = Path(page).read_text().splitlines()
    found = []
    for i, line in enumerate(lines):
        if not line.rstrip().endswith("::") or re.match(r"\s*\.\. [\w:-]+::", line):
            continue
        indent = len(line) - len(line.lstrip())
        start, body = _indented_body(lines, i + 1, indent)
        if re.search(r"^\s*(import |from \w+ import |def |class )|FocalClassifier\(", body, re.M):
            found.append(f"{_relative(page)}:{start + 1}")
    return found


# -- running pages -----------------------------------------------------------------------------
#: warnings of the environment, not of the documented code (a busy dashboard port)
ENVIRONMENT_WARNINGS = (r"Port \d+ is already in use",)


def _check_warnings(caught, where):
    """A reader would see these: every UserWarning fails the page (allowlist above)."""
    seen = [
        f"{w.category.__name__}: {w.message}"
        for w in caught
        if issubclass(w.category, UserWarning)
        and not any(re.search(p, str(w.message)) for p in ENVIRONMENT_WARNINGS)
    ]
    if seen:
        raise AssertionError(f"{where}: the snippets warn: " + " | ".join(seen))


def run_page(page, blocks=None, *, run=("code",)):
    """Run a page's blocks in order in one namespace; ``run`` says which requirements may run.

    ``run`` holds ``"code"`` (blocks without a requirement) and any of ``"cuda"`` /
    ``"network"``. The namespace is a module standing in for ``__main__`` while the page runs,
    as for a script: classes the page defines pickle (``joblib.dump``) and travel to joblib's
    and Dask's workers by value. Returns the ``where`` of every block that ran.
    """
    blocks = read_page(page) if blocks is None else blocks
    main = types.ModuleType("__main__")
    saved_main, environ = sys.modules["__main__"], dict(os.environ)
    ran = []
    sys.modules["__main__"] = main
    try:
        with sklearn.config_context(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                for block in blocks:
                    if block.kind == "teardown" or (block.requires or "code") not in run:
                        continue
                    _exec(block, main)
                    ran.append(block.where)
            finally:
                for block in blocks:
                    if block.kind == "teardown":
                        _exec(block, main)
        _check_warnings(caught, _relative(page))
    finally:
        sys.modules["__main__"] = saved_main
        os.environ.clear()
        os.environ.update(environ)
    return ran


def _exec(block, module):
    # padded so that tracebacks show the page's own line numbers
    code = compile("\n" * (block.line - 1) + block.code, str(block.page), "exec")
    exec(code, module.__dict__)  # noqa: S102 - the documentation's own code


RAN = "snippet ran: "  # how the fresh process reports each block it ran


def _run_in_fresh_process(page, run):
    # one intra-op thread, as the in-process pages run (one_torch_thread); the Dask workers
    # inherit it
    env = dict(os.environ, SCIPY_ARRAY_API="1", OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, __file__, str(page), *[f"--{r}" for r in run if r != "code"]],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return [line.removeprefix(RAN) for line in result.stdout.splitlines() if line.startswith(RAN)]


def _run(page, run):
    blocks = read_page(page)
    if any(b.fresh_process for b in blocks):
        return _run_in_fresh_process(page, run)
    return run_page(page, blocks, run=run)


PAGES_WITH_CODE = [p for p in PAGES if any(b.kind == "code" for b in read_page(p))]

# Pages whose snippets need a newer scikit-learn than the declared floor (1.6, run by the
# floors job of .ci/run), with the reason each page also gives its reader.
SKLEARN_VERSION = tuple(int(part) for part in sklearn.__version__.split(".")[:2])
NEEDS_SKLEARN = {
    "docs/user_guide/gpu.rst": (
        (1, 8),
        "its array-API search scores torch tensors with average_precision, which scikit-learn "
        "< 1.8 does not take",
    ),
    "docs/user_guide/text.rst": (
        (1, 7),
        "its search scores a pipeline's torch predictions against a NumPy y, which scikit-learn "
        "1.6's metrics refuse",
    ),
}


def _skip_below_needed_sklearn(page):
    needed, why = NEEDS_SKLEARN.get(str(_relative(page)), ((0, 0), ""))
    if SKLEARN_VERSION < needed:
        pytest.skip(f"scikit-learn {sklearn.__version__}: {why}")


# -- the tests ---------------------------------------------------------------------------------
@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: str(_relative(p)))
def test_snippets_run(page, tmp_path, monkeypatch):
    _skip_below_needed_sklearn(page)
    monkeypatch.chdir(tmp_path)
    ran = _run(page, run=("code",))
    blocks = [b for b in read_page(page) if b.kind != "teardown"]
    assert ran == [b.where for b in blocks if b.requires is None]


NETWORK = os.environ.get("SKFOCAL_DOCS_NETWORK") == "1"
NEEDS_MARKS = {
    "cuda": [pytest.mark.gpu],
    "network": [
        pytest.mark.skipif(
            not NETWORK, reason="downloads a pretrained model; set SKFOCAL_DOCS_NETWORK=1"
        )
    ],
}


def _pages_with_requirements():
    """``(page, requirement)`` for every page with a block of that requirement."""
    return [
        pytest.param(page, need, marks=NEEDS_MARKS[need], id=f"{_relative(page)}-{need}")
        for page in PAGES
        for need in sorted({b.requires for b in read_page(page) if b.kind == "code"} - {None})
    ]


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("page, need", _pages_with_requirements())
def test_snippets_with_a_requirement_run(page, need, tmp_path, monkeypatch):
    _skip_below_needed_sklearn(page)
    monkeypatch.chdir(tmp_path)
    ran = _run(page, run=("code", need))
    blocks = [b for b in read_page(page) if b.kind != "teardown"]
    assert ran == [b.where for b in blocks if b.requires in (None, need)]


@pytest.mark.parametrize(
    "page", [p for p in PAGES if p.suffix == ".rst"], ids=lambda p: str(_relative(p))
)
def test_python_examples_are_code_blocks(page):
    assert literal_python_blocks(page) == []


# -- the runner itself -------------------------------------------------------------------------
PAGE = """\
Title
=====

..
   snippet setup -- hidden:

   x = 40

Text.

.. code-block:: python
   :class: anything

   y = x + 2

.. code-block:: python

   # requires: CUDA
   import torch
   torch.ones(1, device="cuda")

.. code-block:: python

   assert y == 42
   raise ValueError("the third block")

..
   snippet teardown:

   closed = True
"""


def test_pages_are_read_in_order_with_their_markers(tmp_path):
    page = tmp_path / "page.rst"
    page.write_text(PAGE)
    blocks = read_rst(page)
    assert [(b.kind, b.requires, b.line) for b in blocks] == [
        ("setup", None, 7),
        ("code", None, 14),
        ("code", "cuda", 18),
        ("code", None, 24),
        ("teardown", None, 30),
    ]
    assert blocks[1].code == "y = x + 2"
    markdown = "# t\n\n<!-- snippet setup:\n\nx = 1\n-->\n\n```python\nprint(x)\n```\n"
    blocks = read_markdown(tmp_path / "README.md", markdown)
    assert [(b.kind, b.line, b.code) for b in blocks] == [
        ("setup", 5, "x = 1"),
        ("code", 9, "print(x)"),
    ]


def test_an_unknown_requirement_is_an_error(tmp_path):
    page = tmp_path / "page.rst"
    page.write_text(".. code-block:: python\n\n   # requires: gpu\n   pass\n")
    with pytest.raises(ValueError, match=r"page.rst:3: unknown requirement 'gpu'"):
        run_page(page)


def test_a_raising_snippet_fails_its_page_with_the_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    page = tmp_path / "page.rst"
    page.write_text(PAGE.replace("closed = True", "open('torn-down', 'w').close()"))
    with pytest.raises(ValueError, match="the third block") as info:
        run_page(page)
    frames = [(f.filename, f.lineno) for f in traceback.extract_tb(info.tb)]
    assert frames[-1] == (str(page), 25)  # the page's own line
    assert (tmp_path / "torn-down").exists()  # the teardown ran all the same


def test_a_snippet_that_warns_fails(tmp_path):
    page = tmp_path / "page.rst"
    page.write_text(
        ".. code-block:: python\n\n"
        "   import warnings\n"
        "   warnings.warn(\"scoring='f1' has no effect with early_stopping=False\")\n"
    )
    with pytest.raises(AssertionError, match="snippets warn: UserWarning: scoring='f1'"):
        run_page(page)


if __name__ == "__main__":  # python tests/test_docs_snippets.py PAGE [--cuda] [--network]
    import tempfile

    page, needs = Path(sys.argv[1]).resolve(), [a.removeprefix("--") for a in sys.argv[2:]]
    with tempfile.TemporaryDirectory() as scratch:  # files a page writes land here
        os.chdir(scratch)
        for where in run_page(page, run=("code", *needs)):
            print(f"{RAN}{where}")
