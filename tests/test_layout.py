"""`import jaxrnn` loads the core only; the extras load on first use, under their public names."""

import subprocess
import sys

import jaxrnn

CORE = {
    "jaxrnn",
    "jaxrnn.bptt",
    "jaxrnn.cell",
    "jaxrnn.cells",
    "jaxrnn.checks",
    "jaxrnn.fused",
    "jaxrnn.layers",
    "jaxrnn.linear_scan",
    "jaxrnn.lru",
    "jaxrnn.minimal",
    "jaxrnn.unroll",
}


def _loaded_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_loads_the_core_only():
    loaded = _loaded_after("import jaxrnn")
    assert {m for m in loaded if m.startswith("jaxrnn")} == CORE
    assert not {"optax", "torch", "flax", "equinox"} & loaded


def test_an_extra_loads_on_first_use():
    loaded = _loaded_after("import jaxrnn\njaxrnn.generate")
    assert "jaxrnn.generation" in loaded
    assert "jaxrnn.train" not in loaded


def test_every_public_name_resolves():
    for name in jaxrnn.__all__:
        assert getattr(jaxrnn, name) is not None, name
    assert set(jaxrnn.__all__) <= set(dir(jaxrnn))
    # The module `jaxrnn.generation` never shadows the function `jaxrnn.generate`.
    assert callable(jaxrnn.generate) and jaxrnn.generate.__name__ == "generate"
    assert jaxrnn.sequence_mse.__module__.startswith("jaxrnn.")
