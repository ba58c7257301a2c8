"""jaxrnn: functional recurrent networks for JAX.

A cell is a NamedTuple of pure functions over a params pytree; `unroll` runs it
over a sequence with `jax.lax.scan`. `import jaxrnn` loads the core: the contract
(`cell`), the cells (`cells`, `minimal`, `lru`, `fused`), running them (`unroll`,
`bptt`, `linear_scan`), layers (`layers`) and the validators (`checks`). The rest
loads on first use: the dense head (`jaxrnn.heads`), `generate`, `rollout` and
`shift_right` (`jaxrnn.generation`), `train` with `checkpoint` and the sequence losses
(`jaxrnn.train`), `gradcheck`, `course` and `interop`.
"""

import importlib
from typing import Any

from jaxrnn.cell import BpttStep, Carry, Cell, Initializer, LinearStep, Params, Step
from jaxrnn.cells import gru, lstm, rnn
from jaxrnn.layers import Bidirectional, Layer, Stack, bidirectional, stack
from jaxrnn.linear_scan import linear_scan
from jaxrnn.lru import lru
from jaxrnn.minimal import min_gru, min_lstm
from jaxrnn.unroll import default_hoist, default_parallel, unroll

__version__ = "0.1.0"

_EXTRAS = {
    "checkpoint": ("jaxrnn.train.checkpoint", None),
    "course": ("jaxrnn.course", None),
    "interop": ("jaxrnn.interop", None),
    "train": ("jaxrnn.train", None),
    "gradcheck": ("jaxrnn.gradient_check", "gradcheck"),
    "GradcheckResult": ("jaxrnn.gradient_check", "GradcheckResult"),
    "last_valid": ("jaxrnn.train.losses", "last_valid"),
    "sequence_mse": ("jaxrnn.train.losses", "sequence_mse"),
    "sequence_softmax_cross_entropy": ("jaxrnn.train.losses", "sequence_softmax_cross_entropy"),
    "map_chunks": ("jaxrnn.train.chunks", "map_chunks"),
    "Dense": ("jaxrnn.heads", "Dense"),
    "dense": ("jaxrnn.heads", "dense"),
    "generate": ("jaxrnn.generation", "generate"),
    "rollout": ("jaxrnn.generation", "rollout"),
    "shift_right": ("jaxrnn.generation", "shift_right"),
}


def __getattr__(name: str) -> Any:
    """Load an extra on first use (PEP 562), so `import jaxrnn` stays the core."""
    if name not in _EXTRAS:
        raise AttributeError(f"module 'jaxrnn' has no attribute {name!r}")
    module_name, attribute = _EXTRAS[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    *_EXTRAS,
    "Bidirectional",
    "BpttStep",
    "Carry",
    "Cell",
    "Initializer",
    "Layer",
    "LinearStep",
    "Params",
    "Stack",
    "Step",
    "bidirectional",
    "default_hoist",
    "default_parallel",
    "gru",
    "linear_scan",
    "lru",
    "lstm",
    "min_gru",
    "min_lstm",
    "rnn",
    "stack",
    "unroll",
]
