"""The public API is exactly the documented list of names, and every name is documented.

Adding or removing a public name is a deliberate act: update `PUBLIC_API` here,
`jaxrnn.__all__`, and the table in `docs/api/jaxrnn.md` together.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import re
import types
from pathlib import Path

import pytest

import jaxrnn

PUBLIC_API = [
    "Bidirectional",
    "BpttStep",
    "Carry",
    "Cell",
    "Dense",
    "GradcheckResult",
    "Initializer",
    "Layer",
    "LinearStep",
    "Params",
    "Stack",
    "Step",
    "bidirectional",
    "checkpoint",
    "course",
    "default_hoist",
    "default_parallel",
    "dense",
    "generate",
    "gradcheck",
    "gru",
    "interop",
    "last_valid",
    "linear_scan",
    "lru",
    "lstm",
    "map_chunks",
    "min_gru",
    "min_lstm",
    "rnn",
    "rollout",
    "sequence_mse",
    "sequence_softmax_cross_entropy",
    "shift_right",
    "stack",
    "train",
    "unroll",
]

PACKAGE_DIR = Path(jaxrnn.__file__).resolve().parent
SECTION = re.compile(r"^\s*(Args|Returns|Raises|Example|Examples|Attributes|References):\s*$")


def test_all_is_exactly_the_documented_list():
    assert sorted(jaxrnn.__all__) == sorted(PUBLIC_API)
    assert len(set(jaxrnn.__all__)) == len(jaxrnn.__all__), "jaxrnn.__all__ has duplicates"


def test_star_import_gives_exactly_the_public_names():
    namespace: dict = {}
    exec("from jaxrnn import *", namespace)
    assert {name for name in namespace if name != "__builtins__"} == set(PUBLIC_API)


def test_version_is_a_string():
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", jaxrnn.__version__)


def _import_sources() -> dict[str, str]:
    """Public name -> the module that `jaxrnn/__init__.py` imports it from."""
    tree = ast.parse((PACKAGE_DIR / "__init__.py").read_text(encoding="utf-8"))
    sources = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                sources[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return sources


def _attribute_docstring(qualified: str) -> str | None:
    """The string literal right after `name = ...` at the top level of its module."""
    module, _, name = qualified.rpartition(".")
    path = PACKAGE_DIR.parent.joinpath(*module.split(".")).with_suffix(".py")
    body = ast.parse(path.read_text(encoding="utf-8")).body
    for node, following in itertools.pairwise(body):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                return following.value.value if isinstance(following.value.value, str) else None
            return None
    return None


def own_docstring(name: str) -> str | None:
    """The docstring written for `jaxrnn.<name>` itself, not one inherited from its type.

    Functions, classes and modules carry their own `__doc__`; a type alias such as
    `Params = dict[str, Array]` has only the string literal that follows it in the
    source, so that is read from the module that defines it.
    """
    obj = getattr(jaxrnn, name)
    if isinstance(obj, (types.FunctionType, types.ModuleType)):
        return inspect.getdoc(obj)
    if inspect.isclass(obj) and "__doc__" in vars(obj) and obj.__module__.startswith("jaxrnn"):
        return inspect.getdoc(obj)
    source = _import_sources().get(name)
    return _attribute_docstring(source) if source else None


@pytest.mark.parametrize("name", PUBLIC_API)
def test_every_public_name_exists_and_has_a_docstring(name):
    assert hasattr(jaxrnn, name), f"jaxrnn.{name} is in the documented API but does not exist"
    doc = own_docstring(name)
    assert doc and doc.strip(), f"jaxrnn.{name} has no docstring of its own"
    summary = doc.strip().splitlines()[0]
    assert len(summary) > 10, f"jaxrnn.{name}'s docstring needs a one-line summary, got {summary!r}"


def public_functions() -> list[tuple[str, types.FunctionType]]:
    """Every function in the public API: in `jaxrnn.__all__`, or public in an exported module.

    A module's public names are its `__all__`, or else the names without a leading
    underscore that it defines itself.
    """
    found = []
    for name in jaxrnn.__all__:
        obj = getattr(jaxrnn, name)
        if isinstance(obj, types.FunctionType):
            found.append((f"jaxrnn.{name}", obj))
        elif isinstance(obj, types.ModuleType):
            names = getattr(obj, "__all__", None) or [n for n in vars(obj) if not n.startswith("_")]
            for member in names:
                value = getattr(obj, member)
                if isinstance(value, types.FunctionType) and value.__module__ == obj.__name__:
                    found.append((f"jaxrnn.{name}.{member}", value))
    return found


PUBLIC_FUNCTIONS = public_functions()


def test_public_functions_are_found():
    names = {name for name, _ in PUBLIC_FUNCTIONS}
    assert {"jaxrnn.lstm", "jaxrnn.unroll"} <= names


def sections(doc: str) -> list[str]:
    return [m.group(1) for line in doc.splitlines() if (m := SECTION.match(line))]


@pytest.mark.parametrize("name, function", PUBLIC_FUNCTIONS, ids=[n for n, _ in PUBLIC_FUNCTIONS])
def test_every_public_function_has_an_example(name, function):
    doc = inspect.getdoc(function) or ""
    found = sections(doc)
    assert "Example" in found or "Examples" in found, (
        f"{name}'s docstring has no 'Example:' section (sections found: {found})"
    )
    example = doc.split("Example", 1)[1]
    assert ">>>" in example, f"{name}'s Example section has no '>>>' line"


@pytest.mark.parametrize("name, function", PUBLIC_FUNCTIONS, ids=[n for n, _ in PUBLIC_FUNCTIONS])
def test_every_public_function_documents_its_arguments(name, function):
    doc = inspect.getdoc(function) or ""
    parameters = [
        p
        for p in inspect.signature(function).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if parameters:
        assert "Args" in sections(doc), f"{name}'s docstring has no 'Args:' section"
        args = doc.split("Args:", 1)[1]
        for parameter in parameters:
            assert re.search(rf"^\s+{parameter.name}\b", args, re.MULTILINE), (
                f"{name}'s Args section does not describe {parameter.name!r}"
            )
    assert "Returns" in sections(doc), f"{name}'s docstring has no 'Returns:' section"
