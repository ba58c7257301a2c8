"""jaxrnn: functional recurrent networks for JAX.

A cell is a NamedTuple of pure functions over a params dict; `unroll` runs it
over a sequence with `jax.lax.scan`.
"""

from jaxrnn import checkpoint, course, interop, train
from jaxrnn.cells import Carry as Carry
from jaxrnn.cells import Cell as Cell
from jaxrnn.cells import Initializer as Initializer
from jaxrnn.cells import Params as Params
from jaxrnn.cells import gru as gru
from jaxrnn.cells import lstm as lstm
from jaxrnn.cells import rnn as rnn
from jaxrnn.generate import generate as generate
from jaxrnn.generate import rollout as rollout
from jaxrnn.generate import shift_right as shift_right
from jaxrnn.gradcheck import GradcheckResult as GradcheckResult
from jaxrnn.gradcheck import gradcheck as gradcheck
from jaxrnn.heads import Dense as Dense
from jaxrnn.heads import dense as dense
from jaxrnn.layers import Bidirectional as Bidirectional
from jaxrnn.layers import Layer as Layer
from jaxrnn.layers import Stack as Stack
from jaxrnn.layers import bidirectional as bidirectional
from jaxrnn.layers import stack as stack
from jaxrnn.losses import last_valid as last_valid
from jaxrnn.losses import sequence_mse as sequence_mse
from jaxrnn.losses import sequence_softmax_cross_entropy as sequence_softmax_cross_entropy
from jaxrnn.unroll import default_hoist as default_hoist
from jaxrnn.unroll import unroll as unroll

__version__ = "0.1.0"

__all__ = [
    "Bidirectional",
    "Carry",
    "Cell",
    "Dense",
    "GradcheckResult",
    "Initializer",
    "Layer",
    "Params",
    "Stack",
    "bidirectional",
    "checkpoint",
    "course",
    "default_hoist",
    "dense",
    "generate",
    "gradcheck",
    "gru",
    "interop",
    "last_valid",
    "lstm",
    "rnn",
    "rollout",
    "sequence_mse",
    "sequence_softmax_cross_entropy",
    "shift_right",
    "stack",
    "train",
    "unroll",
]
