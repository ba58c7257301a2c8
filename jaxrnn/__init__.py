"""jaxrnn: functional recurrent networks for JAX.

A cell is a NamedTuple of pure functions over a params pytree; `unroll` runs it
over a sequence with `jax.lax.scan`. The extras (`checkpoint`, `course`,
`gradcheck`, `interop`, `train`) load on first use, not with `import jaxrnn`.
"""

import importlib
from typing import Any

from jaxrnn.cell import BpttStep as BpttStep
from jaxrnn.cell import Carry as Carry
from jaxrnn.cell import Cell as Cell
from jaxrnn.cell import Initializer as Initializer
from jaxrnn.cell import LinearStep as LinearStep
from jaxrnn.cell import Params as Params
from jaxrnn.cell import Step as Step
from jaxrnn.cells import gru as gru
from jaxrnn.cells import lstm as lstm
from jaxrnn.cells import rnn as rnn
from jaxrnn.chunks import map_chunks as map_chunks
from jaxrnn.heads import Dense as Dense
from jaxrnn.heads import dense as dense
from jaxrnn.layers import Bidirectional as Bidirectional
from jaxrnn.layers import Layer as Layer
from jaxrnn.layers import Stack as Stack
from jaxrnn.layers import bidirectional as bidirectional
from jaxrnn.layers import stack as stack
from jaxrnn.linear_scan import linear_scan as linear_scan
from jaxrnn.losses import last_valid as last_valid
from jaxrnn.losses import sequence_mse as sequence_mse
from jaxrnn.losses import sequence_softmax_cross_entropy as sequence_softmax_cross_entropy
from jaxrnn.lru import lru as lru
from jaxrnn.minimal import min_gru as min_gru
from jaxrnn.minimal import min_lstm as min_lstm
from jaxrnn.unroll import default_hoist as default_hoist
from jaxrnn.unroll import default_parallel as default_parallel
from jaxrnn.unroll import unroll as unroll

__version__ = "0.1.0"

_EXTRAS = {
    "checkpoint": ("jaxrnn.checkpoint", None),
    "course": ("jaxrnn.course", None),
    "interop": ("jaxrnn.interop", None),
    "train": ("jaxrnn.train", None),
    "gradcheck": ("jaxrnn.gradient_check", "gradcheck"),
    "GradcheckResult": ("jaxrnn.gradient_check", "GradcheckResult"),
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


__all__ = [
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
