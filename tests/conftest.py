"""Shared test configuration.

The whole suite runs with strict dtype promotion and rank promotion errors, so
accidental float64 promotion or silent broadcasting fails loudly.
"""

import jax
import pytest

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
