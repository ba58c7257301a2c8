"""Training: a train state, a jitted optax step, a loop that checkpoints and resumes, losses.

Everything here is optional: `jaxrnn.unroll` and the cells work with any training
code. These pieces are what the examples share, and what most training scripts
would otherwise write again:

- `TrainState`: params, optimizer state, PRNG key and step count in one pytree;
  `init_state` makes it.
- `make_train_step(loss_fn, optimizer)`: one jitted optax update; with
  `mesh=` (a `jax.sharding.Mesh`) it splits each batch across the mesh's devices
  and keeps the state replicated (data parallelism).
- `fit`: the loop. Progress bar, logging, evaluation, numbered checkpoints
  (`jaxrnn.checkpoint`) written atomically, resuming from them in the same call
  (`resume=True`), a stop with the step named when the loss stops being finite,
  and a checkpoint before exiting on Ctrl-C.
- `restore`: a checkpoint, or a directory's newest valid one, e.g. to load
  trained params for inference.

Its modules: `loop` (the names above, re-exported here), `checkpoint` (atomic,
checksummed files of any pytree), `losses` (sequence losses that skip padding) and
`chunks` (a per-step head and loss a chunk of steps at a time). The losses and
`map_chunks` are also `jaxrnn.sequence_mse`, `jaxrnn.last_valid`, ... .

A run resumes bit for bit when each batch is a function of the step number
(`batches(step)`) and every other random choice comes from `state.key`: then
training 2N steps equals training N, stopping, and resuming for N more.
"""

from jaxrnn.train import checkpoint, loop
from jaxrnn.train.loop import *  # noqa: F403 (exactly the names in loop.__all__)

__all__ = ["checkpoint", *loop.__all__]
