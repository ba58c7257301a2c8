"""Shared test configuration.

The whole suite runs with strict dtype promotion and rank promotion errors, so
accidental float64 promotion or silent broadcasting fails loudly.
"""

import sys
from pathlib import Path

import jax
import pytest

# The example scripts import their shared command-line pieces (cli.py) as a sibling
# module, as they do when run as `python examples/<name>.py`; the tests load them from
# their files.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(scope="module")
def few_optimizations():
    """Compile with few XLA optimisations (`jax_disable_most_optimizations`) for a module.

    For modules that compile hundreds of small programs and run each once or twice, where
    XLA's optimisations cost more time than they save (about 30% of such a module's time);
    the values checked are the same either way.
    """
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


@pytest.fixture
def x64():
    """Enable float64 for one test, restoring the previous setting afterwards."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    """Each floating dtype the library promises to handle exactly, x64 on for float64."""
    if request.param == "float64":
        with jax.enable_x64(True):
            yield jax.numpy.float64
    else:
        yield jax.numpy.float32
