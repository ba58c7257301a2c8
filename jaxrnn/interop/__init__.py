"""Move weights between jaxrnn cells and PyTorch, Flax and Equinox recurrent cells.

Each library has a `from_*` function that returns params for a jaxrnn cell and a
`to_*` function that lays them out for the other library, so a trained model
moves in either direction and gives the same outputs. `from_x(cell, to_x(cell,
params))` gives back `params` bit for bit.

One module per framework: `jaxrnn.interop.torch`, `jaxrnn.interop.flax` and
`jaxrnn.interop.equinox`; every function is also importable from here.
"""

from jaxrnn.interop.equinox import from_equinox, to_equinox
from jaxrnn.interop.flax import from_flax, from_flax_carry, to_flax, to_flax_carry
from jaxrnn.interop.torch import carry_from_torch, carry_to_torch, from_torch, to_torch

__all__ = [
    "carry_from_torch",
    "carry_to_torch",
    "from_equinox",
    "from_flax",
    "from_flax_carry",
    "from_torch",
    "to_equinox",
    "to_flax",
    "to_flax_carry",
    "to_torch",
]
