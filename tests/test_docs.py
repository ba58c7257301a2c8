"""The examples in the documentation run and show what they claim.

- Every `>>>` example in the docstrings of every public module of `jaxrnn`,
  found with `pkgutil.walk_packages` so that a new module is covered without
  editing this file.
- The README's python code blocks, in order, as one program.
- The python code blocks of every page under `docs/`, each page in order as one
  program. Only blocks fenced as ```python run; shell commands and signatures
  use other fences (```bash, ```text).
- Every line of code the site shows fits its content column (`LIMIT`): the lines
  of each fenced block under `docs/`, and the `>>>` examples and fenced blocks of
  the docstrings that the API pages render.

Everything runs under the suite's strict dtype and rank promotion (conftest.py),
so an example that only works thanks to silent promotion fails here.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import inspect
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import jaxrnn

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PYTHON_BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)


def public_modules() -> list[str]:
    """`jaxrnn` and its submodules whose dotted path has no part starting with `_`."""
    names = ["jaxrnn"]
    for info in pkgutil.walk_packages(jaxrnn.__path__, prefix="jaxrnn."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def docstring_examples() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    for name in public_modules():
        module = importlib.import_module(name)
        tests.extend(test for test in finder.find(module) if test.examples)
    return sorted(tests, key=lambda test: test.name)


DOCTESTS = docstring_examples()


def test_public_modules_are_found():
    # Guards the discovery itself: an empty walk would make the doctests pass vacuously.
    modules = public_modules()
    assert {"jaxrnn", "jaxrnn.cells", "jaxrnn.unroll"} <= set(modules)
    documented = {test.name.rsplit(".", 1)[0] for test in DOCTESTS}
    assert {"jaxrnn.cells", "jaxrnn.unroll"} <= documented


@pytest.mark.parametrize("test", DOCTESTS, ids=[test.name for test in DOCTESTS])
def test_docstring_examples(test: doctest.DocTest):
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    output: list[str] = []
    result = runner.run(test, out=output.append, clear_globs=True)
    assert result.attempted > 0
    assert result.failed == 0, "".join(output)


def python_blocks(path: Path) -> str:
    """The python blocks of a markdown file as one program, each at its own line numbers.

    Padding with blank lines makes a traceback point at the line in the file.
    """
    text = path.read_text(encoding="utf-8")
    program = []
    for match in PYTHON_BLOCK.finditer(text):
        first_line = text.count("\n", 0, match.start(1))
        program.append("\n" * (first_line - sum(part.count("\n") for part in program)))
        program.append(match.group(1))
    return "".join(program)


def run_markdown(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = python_blocks(path)
    assert program.strip(), f"{path.name} has no ```python block"
    if re.search(r"^\s*import torch\b", program, re.MULTILINE):
        pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    exec(compile(program, str(path), "exec"), {"__name__": f"docs_{path.stem}"})


def test_readme_quick_start(tmp_path, monkeypatch):
    run_markdown(README, tmp_path, monkeypatch)


def test_readme_opens_with_the_setup_commands():
    text = README.read_text(encoding="utf-8")
    commands = re.findall(r"^```bash\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    assert commands[:2] == [
        'pip install -e ".[examples]" && python examples/char_lm.py\n',
        'pip install -e ".[test]" && pytest\n',
    ]


DOC_PAGES = sorted(path for path in DOCS.rglob("*.md") if PYTHON_BLOCK.search(path.read_text()))


def test_doc_pages_are_found():
    names = {path.relative_to(DOCS).as_posix() for path in DOC_PAGES}
    assert {"getting-started.md", "cells.md", "unroll.md"} <= names


@pytest.mark.slow
@pytest.mark.parametrize(
    "page", DOC_PAGES, ids=[path.relative_to(DOCS).as_posix() for path in DOC_PAGES]
)
def test_doc_page_examples(page: Path, tmp_path, monkeypatch):
    run_markdown(page, tmp_path, monkeypatch)


def test_every_public_module_has_an_api_page():
    for name in public_modules():
        page = DOCS / "api" / f"{name.rsplit('.', 1)[-1]}.md"
        assert page.exists(), f"{name} has no API reference page; add {page.relative_to(ROOT)}"
        directive = re.search(rf"^::: {re.escape(name)}$", page.read_text(), re.MULTILINE)
        assert directive, f"{page.relative_to(ROOT)} must render the module with '::: {name}'"
        nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
        assert f"api/{page.name}" in nav, f"add {page.relative_to(DOCS)} to the nav in mkdocs.yml"


def test_api_index_lists_every_public_name():
    index = (DOCS / "api" / "jaxrnn.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| \[`jr\.(\w+)`\]", index, re.MULTILINE))
    public = set(jaxrnn.__all__)
    assert listed == public, (
        "docs/api/jaxrnn.md must list exactly jaxrnn.__all__: "
        f"missing {sorted(public - listed)}, extra {sorted(listed - public)}"
    )


# Characters of monospace that a code block of the site's content column shows
# without scrolling sideways (mkdocs-material, browser window 1280 to 1920 px wide).
LIMIT = 80
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})")


def code_lines(text: str) -> Iterator[tuple[int, str]]:
    """(index, line as displayed) of each code line of a Markdown text or docstring.

    Code is what a fenced block holds, measured from the fence's indentation, and a
    `>>>` example up to the next blank line, measured from the `>>>`.
    """
    fence: tuple[str, str] | None = None
    prompt: int | None = None
    for index, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if fence is not None:
            indent, marks = fence
            if stripped.startswith(marks) and set(stripped) == {marks[0]}:
                fence = None
            else:
                yield index, line[len(indent) :] if line.startswith(indent) else stripped
        elif match := FENCE.match(line):
            fence = match.group(1), match.group(2)
        elif prompt is not None and stripped:
            yield index, line[prompt:]
        elif stripped.startswith(">>>"):
            prompt = len(line) - len(line.lstrip())
            yield index, line[prompt:]
        else:
            prompt = None


def too_long(lines: Iterator[tuple[int, str]], where: str, first_line: int) -> list[str]:
    return [
        f"{where}:{first_line + index}: {len(line)} characters"
        for index, line in lines
        if len(line) > LIMIT
    ]


MARKDOWN = sorted(DOCS.rglob("*.md"))


@pytest.mark.parametrize(
    "page", MARKDOWN, ids=[path.relative_to(DOCS).as_posix() for path in MARKDOWN]
)
def test_doc_code_lines_fit_the_column(page: Path):
    text = page.read_text(encoding="utf-8")
    offenders = too_long(code_lines(text), page.relative_to(ROOT).as_posix(), 1)
    assert not offenders, f"code lines longer than {LIMIT} characters:\n" + "\n".join(offenders)


def shown_docstrings(tree: ast.Module) -> Iterator[ast.Constant]:
    """The docstrings the API pages render: of the module, of its public classes,
    functions and methods, and of the attributes documented by a string below them."""

    def is_string(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        )

    def visit(node: ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        if node.body and is_string(node.body[0]):
            yield node.body[0].value
        for previous, child in zip([None, *node.body[:-1]], node.body, strict=True):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                if not child.name.startswith("_"):
                    yield from visit(child)
            elif (
                isinstance(node, (ast.Module, ast.ClassDef))
                and isinstance(previous, (ast.Assign, ast.AnnAssign))
                and is_string(child)
            ):
                yield child.value

    yield from visit(tree)


MODULES = public_modules()


@pytest.mark.parametrize("name", MODULES)
def test_docstring_code_lines_fit_the_column(name: str):
    path = Path(importlib.util.find_spec(name).origin)
    where = path.relative_to(ROOT).as_posix()
    offenders = []
    for docstring in shown_docstrings(ast.parse(path.read_text(encoding="utf-8"))):
        # As displayed: inspect.cleandoc drops the leading blank lines and the indentation.
        raw = docstring.value.expandtabs().splitlines()
        blank = next((i for i, line in enumerate(raw) if line.strip()), 0)
        lines = code_lines(inspect.cleandoc(docstring.value))
        offenders += too_long(lines, where, docstring.lineno + blank)
    assert not offenders, f"code lines longer than {LIMIT} characters:\n" + "\n".join(offenders)


def program_lines(source: str) -> list[str]:
    """The lines of `source` that are code: no blanks, comments or docstring lines."""
    lines = [line.rstrip() for line in source.splitlines()]
    return [line for line in lines if line.strip() and not line.strip().startswith(('"""', "#"))]


def test_the_small_cell_of_the_cells_page_is_in_the_battery_and_13_lines():
    import registry

    page = (DOCS / "cells.md").read_text()
    shown = re.search(r"^(def elman\(hidden_size\):\n.*?)^```", page, re.DOTALL | re.MULTILINE)
    assert shown is not None, "docs/cells.md no longer shows def elman"
    tested = program_lines(inspect.getsource(registry.elman))
    assert program_lines(shown.group(1)) == tested
    assert len(tested) == 13  # the page says "Thirteen lines of code"
