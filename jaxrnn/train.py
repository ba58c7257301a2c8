"""Training-loop pieces: a train state, a jitted optax step, and a loop that checkpoints.

Everything here is optional: `jaxrnn.unroll` and the cells work with any training
code. These pieces are what the examples share, and what most training scripts
would otherwise write again:

- `TrainState`: params, optimizer state, PRNG key and step count in one pytree;
  `init_state` makes it.
- `make_train_step(loss_fn, optimizer)`: one jitted optax update.
- `DataParallel`: a `jax.sharding.Mesh` over devices; with it the step shards each
  batch over the devices and keeps the state replicated (data parallelism).
- `fit`: the loop. Progress bar, logging, evaluation, numbered checkpoints
  (`jaxrnn.checkpoint`) written atomically, a stop with the step named when the
  loss stops being finite, and a checkpoint before exiting on Ctrl-C.
- `restore`: a checkpoint, or a directory's newest valid one, to resume from.

A run resumes bit for bit when each batch is a function of the step number
(`batches(step)`) and every other random choice comes from `state.key`: then
training 2N steps equals training N, saving, loading and training N more.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxrnn import checkpoint, checks

__all__ = [
    "DataParallel",
    "FitResult",
    "NonFiniteLossError",
    "Restored",
    "StopTraining",
    "TrainState",
    "TrainingInterrupted",
    "fit",
    "init_state",
    "make_train_step",
    "restore",
]

Array = jax.Array
PyTree = Any
Batch = Any
"""Whatever `loss_fn` takes as its batch: an array or a pytree of arrays."""
LossFn = Callable[[PyTree, Batch, Array], Array]
"""`loss_fn(params, batch, key) -> scalar loss`."""
StepFn = Callable[["TrainState", Batch], tuple["TrainState", Array]]
"""`step_fn(state, batch) -> (new_state, loss)`, as `make_train_step` returns it."""


class TrainState(NamedTuple):
    """Everything a training loop carries from one step to the next.

    A NamedTuple, so it is a pytree: it goes through `jax.jit`, and
    `jaxrnn.checkpoint` saves and loads it as one tree.

    Attributes:
      step: int32 scalar, the number of updates applied so far.
      params: the model's params pytree.
      opt_state: the optax optimizer state for `params`.
      key: the PRNG key the next step splits its randomness from (dropout,
        sampling inside the loss).
    """

    step: Array
    params: PyTree
    opt_state: PyTree
    key: Array


def init_state(params: PyTree, optimizer: optax.GradientTransformation, key: Array) -> TrainState:
    """A `TrainState` at step 0: `params`, `optimizer.init(params)` and `key`.

    Args:
      params: the model's params pytree.
      optimizer: an optax gradient transformation, e.g. `optax.adam(1e-3)`.
      key: a PRNG key (`jax.random.key(seed)`), split once per step.

    Returns:
      `TrainState(step=0, params, opt_state, key)`.

    Raises:
      TypeError: `optimizer` is not an optax `GradientTransformation` or `key`
        is not a PRNG key.

    Examples:
      >>> import jax, optax, jaxrnn as jr
      >>> params = jr.rnn(4).init(jax.random.key(0), input_size=2)
      >>> state = jr.train.init_state(params, optax.sgd(0.1), jax.random.key(1))
      >>> int(state.step), sorted(state.params)
      (0, ['b', 'w_h', 'w_x'])
    """
    _check_optimizer(optimizer)
    checks.prng_key(key, "key")  # kept as given: a raw key stays raw in checkpoints
    return TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params), key)


def _check_optimizer(optimizer: Any) -> None:
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(
            "optimizer must be an optax GradientTransformation (with init and update), "
            f"e.g. optax.adam(1e-3); got {type(optimizer).__name__}"
        )


class DataParallel:
    """Data parallelism over a 1-D `jax.sharding.Mesh` of devices.

    Each batch is split along `batch_axis` across the devices; params, optimizer
    state and key are replicated on all of them. Every device computes the loss
    and gradients of its part of the batch, XLA adds the gradients up across
    devices, and every device applies the same update, so training gives the
    same losses as on one device (up to the order of floating-point sums).

    The same code runs on several hosts under JAX's multi-host runtime: call
    `jax.distributed.initialize()` first on every process, and `jax.devices()`
    then lists the devices of all hosts (see the training docs page).

    Args:
      devices: the devices to use, by default `jax.devices()` (all of them).
      batch_axis: the axis of every batch array that indexes examples: 1 for
        time-major `(T, batch, ...)` arrays, 0 for `(batch, ...)`.

    Raises:
      ValueError: `devices` is empty or `batch_axis` is negative.

    Examples:
      >>> import jaxrnn as jr, numpy as np
      >>> dp = jr.train.DataParallel(batch_axis=1)
      >>> xs = dp.shard(np.zeros((5, 4 * dp.size, 3), np.float32))  # (T, batch, features)
      >>> xs.shape, len(xs.sharding.device_set) == dp.size
      ((5, 4, 3), True)
    """

    def __init__(self, devices: Sequence[Any] | None = None, *, batch_axis: int = 0):
        devices = list(jax.devices() if devices is None else devices)
        if not devices:
            raise ValueError("devices must hold at least one device, got an empty sequence")
        if isinstance(batch_axis, bool) or not isinstance(batch_axis, int) or batch_axis < 0:
            raise ValueError(f"batch_axis must be a non-negative int, got {batch_axis!r}")
        self.mesh = Mesh(np.array(devices), ("batch",))
        self.batch_axis = batch_axis
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        """The sharding of the train state: a full copy on every device."""

    @property
    def size(self) -> int:
        """The number of devices."""
        return self.mesh.size

    def __repr__(self) -> str:
        return f"DataParallel(size={self.size}, batch_axis={self.batch_axis})"

    def batch_sharding(self, ndim: int) -> NamedSharding:
        """The sharding of a batch array of `ndim` dims: split along `batch_axis`."""
        spec = [None] * ndim
        spec[self.batch_axis] = "batch"
        return NamedSharding(self.mesh, PartitionSpec(*spec))

    def shard(self, batch: Batch) -> Batch:
        """Put every array of `batch` on the devices, split along `batch_axis`.

        In a single process `batch` is the whole batch. Under JAX's multi-host
        runtime (`jax.process_count() > 1`) each process passes its own share,
        e.g. `local_share(global_batch)`, and the arrays returned are global
        arrays of `process_count()` times that size.

        Args:
          batch: an array or pytree of arrays, each with at least
            `batch_axis + 1` dims and a batch size divisible by this process's
            number of devices.

        Returns:
          The same pytree of `jax.Array`s, sharded.

        Raises:
          ValueError: an array has too few dims, or its batch size is not a
            multiple of the number of devices; the message names its key path.
        """
        local = len(self.mesh.local_devices)

        def put(path: tuple, leaf: Any) -> Array:
            shape = np.shape(leaf)
            where = jax.tree_util.keystr(path)
            if len(shape) <= self.batch_axis:
                raise ValueError(
                    f"batch{where} has shape {checks.shape_str(shape)}, "
                    f"no batch_axis {self.batch_axis} to split across {self.size} devices"
                )
            if shape[self.batch_axis] % local:
                raise ValueError(
                    f"batch{where} has batch size {shape[self.batch_axis]} (axis "
                    f"{self.batch_axis} of shape {checks.shape_str(shape)}), which does not "
                    f"split evenly across {local} devices; use a batch size divisible by {local}"
                )
            return _put(leaf, self.batch_sharding(len(shape)), replicated=False)

        return jax.tree_util.tree_map_with_path(put, batch)

    def local_share(self, batch: Batch) -> Batch:
        """This process's part of a global `batch`: its block along `batch_axis`.

        With one process that is all of it. Under the multi-host runtime every
        process can build the same global batch (say from the step number) and
        pass `local_share(batch)` to `shard`.
        """
        count, index = jax.process_count(), jax.process_index()

        def take(leaf: Any) -> Any:
            size = np.shape(leaf)[self.batch_axis] // count
            return jax.lax.slice_in_dim(
                jnp.asarray(leaf), index * size, (index + 1) * size, 1, self.batch_axis
            )

        return batch if count == 1 else jax.tree.map(take, batch)

    def replicate(self, tree: PyTree) -> PyTree:
        """Put a full copy of every array of `tree` on every device."""
        return jax.tree.map(lambda leaf: _put(leaf, self.replicated, replicated=True), tree)


def _put(leaf: Any, sharding: NamedSharding, replicated: bool) -> Array:
    """`jax.device_put`, also across processes, where each passes its local data."""
    if isinstance(leaf, jax.Array) and leaf.sharding == sharding:
        return leaf
    if jax.process_count() == 1:
        return jax.device_put(leaf, sharding)
    if jnp.issubdtype(jnp.result_type(leaf), jax.dtypes.prng_key):
        data = _put(jax.random.key_data(leaf), sharding, replicated)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
    local = np.asarray(leaf)
    # A replicated array's local data is the whole array; a sharded one's is this
    # process's share, and the global shape follows from the sharding.
    return jax.make_array_from_process_local_data(
        sharding, local, local.shape if replicated else None
    )


def make_train_step(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    *,
    data_parallel: DataParallel | None = None,
) -> StepFn:
    """One optax update as a jitted function `step(state, batch) -> (state, loss)`.

    The step splits `state.key` into the key for the next step and a key for
    this one, computes `loss_fn(params, batch, key)` and its gradient, and
    applies `optimizer`'s update. The loss returned is the batch's loss before
    the update. optax's updates run under JAX's standard dtype promotion, so
    they work when the rest of the program uses `"strict"`.

    Args:
      loss_fn: `loss_fn(params, batch, key) -> scalar`; `key` is a fresh PRNG
        key each step, for dropout or sampling (ignore it if nothing is random).
      optimizer: an optax gradient transformation.
      data_parallel: a `DataParallel`; the step then shards each batch across
        its devices and keeps the state replicated (it moves a state or batch
        that lives elsewhere onto the mesh first).

    Returns:
      `step(state, batch) -> (new_state, loss)`, compiled once per batch shape.

    Raises:
      TypeError: `loss_fn` is not callable, `optimizer` is not an optax
        transformation or `data_parallel` is not a `DataParallel`.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, jaxrnn as jr
      >>> cell = jr.rnn(8)
      >>> def loss_fn(params, xs, key):
      ...     _, hs = jr.unroll(cell, params, xs)
      ...     return jnp.mean(hs**2)
      >>> optimizer = optax.sgd(0.1)
      >>> state = jr.train.init_state(
      ...     cell.init(jax.random.key(0), input_size=3), optimizer, jax.random.key(1))
      >>> step = jr.train.make_train_step(loss_fn, optimizer)
      >>> xs = jnp.ones((5, 2, 3))  # (T, batch, features)
      >>> state, first = step(state, xs)
      >>> state, second = step(state, xs)
      >>> int(state.step), bool(second < first)
      (2, True)
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    _check_optimizer(optimizer)
    if data_parallel is not None and not isinstance(data_parallel, DataParallel):
        raise TypeError(
            f"data_parallel must be a jaxrnn.train.DataParallel or None, "
            f"got {type(data_parallel).__name__}"
        )

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, Array]:
        key, step_key = jax.random.split(state.key)
        loss, grads = jax.value_and_grad(loss_fn)(state.params, batch, step_key)
        # optax's own arithmetic mixes Python scalars and int32 counters, which
        # "strict" dtype promotion rejects.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
        return TrainState(state.step + 1, params, opt_state, key), loss

    if data_parallel is None:
        return jax.jit(step)

    dp = data_parallel
    jitted = jax.jit(step, out_shardings=(dp.replicated, dp.replicated))

    def sharded_step(state: TrainState, batch: Batch) -> tuple[TrainState, Array]:
        return jitted(dp.replicate(state), dp.shard(batch))

    return sharded_step


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; `fit` stopped without saving that state.

    Attributes:
      step: the 1-based number of the update whose loss was not finite.
      loss: that loss.
      checkpoint: the newest checkpoint `fit` wrote before it, or None.
    """

    def __init__(self, message: str, step: int, loss: float, checkpoint: Path | None):
        super().__init__(message)
        self.step = step
        self.loss = loss
        self.checkpoint = checkpoint


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped `fit` between two steps, after it saved a checkpoint (if it had a directory).

    A `KeyboardInterrupt`, so a script that does not catch it stops as on any
    Ctrl-C.

    Attributes:
      state: the state after the last completed step.
      checkpoint: the checkpoint written for it, or None without `checkpoint_dir`.
    """

    def __init__(self, message: str, state: TrainState, checkpoint: Path | None):
        super().__init__(message)
        self.state = state
        self.checkpoint = checkpoint


class StopTraining(Exception):
    """Raise from `fit`'s `evaluate` to end training early, e.g. when a metric stops improving.

    `fit` then saves a checkpoint (when it has a `checkpoint_dir`), closes its log and
    returns its `FitResult` as after the last step.

    Examples:
      >>> from jaxrnn.train import StopTraining
      >>> def evaluate(params):
      ...     raise StopTraining("validation loss stopped improving")
    """


class FitResult(NamedTuple):
    """What `fit` returns.

    Attributes:
      state: the state after the last step.
      history: one dict per logged step: `step`, `train_loss` (the mean loss
        since the previous entry) and whatever `evaluate` returned there.
      losses: the loss of every step since step 0, float64 `(steps,)`,
        including those of the run that was resumed.
      checkpoint: the last checkpoint written, or None.
    """

    state: TrainState
    history: list[dict[str, Any]]
    losses: np.ndarray
    checkpoint: Path | None


class Restored(NamedTuple):
    """A checkpoint read back by `restore`.

    Attributes:
      state: the saved `TrainState`, in the structure of `like`.
      history: the saved `FitResult.history` up to the checkpoint.
      losses: the saved per-step losses, float64 `(step,)`.
      metadata: the `metadata` given to `fit` when it saved.
      path: the file it came from.
    """

    state: TrainState
    history: list[dict[str, Any]]
    losses: np.ndarray
    metadata: dict[str, Any]
    path: Path


_PREFIX = "ckpt"


def restore(path: str | os.PathLike, like: TrainState) -> Restored | None:
    """Load a checkpoint `fit` wrote into `like`'s structure: a given file, or a directory's newest.

    Given a directory (the `checkpoint_dir` of `fit`), its checkpoints are
    tried newest first; one that is truncated or corrupt is skipped with a
    `RuntimeWarning` that names it (see `jaxrnn.checkpoint.latest`), so a
    damaged last file falls back to the previous one.

    Args:
      path: a checkpoint file, or the folder `fit` saved into.
      like: a state of the same model and optimizer, e.g. a fresh `init_state`
        (only its structure, shapes and dtypes are used).

    Returns:
      A `Restored`, or None when `path` is a directory without a valid
      checkpoint (or does not exist).

    Raises:
      ValueError: the checkpoint does not fit `like` (another model size or
        optimizer; the message names the leaf and both shapes), or the file
        `path` is damaged.

    Examples:
      >>> import tempfile, jax, jax.numpy as jnp, optax, jaxrnn as jr
      >>> cell, optimizer, directory = jr.rnn(4), optax.sgd(0.1), tempfile.mkdtemp()
      >>> def fresh_state():
      ...     params = cell.init(jax.random.key(0), input_size=2)
      ...     return jr.train.init_state(params, optimizer, jax.random.key(1))
      >>> jr.train.restore(directory, like=fresh_state()) is None
      True
      >>> def loss_fn(params, xs, key):
      ...     return jnp.mean(jr.unroll(cell, params, xs)[1] ** 2)
      >>> step_fn = jr.train.make_train_step(loss_fn, optimizer)
      >>> _ = jr.train.fit(fresh_state(), step_fn, lambda step: jnp.ones((3, 2)),
      ...                  steps=5, checkpoint_dir=directory, progress=False)  # doctest: +ELLIPSIS
      step 1/5  train loss ...
      step 5/5  train loss ...
      >>> restored = jr.train.restore(directory, like=fresh_state())
      >>> restored.path.name, int(restored.state.step), restored.losses.shape
      ('ckpt_00000005.npz', 5, (5,))
    """
    path = Path(path)
    if not path.is_file():
        path = checkpoint.latest(path, prefix=_PREFIX)
        if path is None:
            return None
    metadata = checkpoint.read_metadata(path)
    state = checkpoint.load(path, like=like)
    fit_info = metadata.get("fit", {})
    losses = np.asarray(fit_info.get("losses", []), dtype=np.float64)
    return Restored(
        state, list(fit_info.get("history", [])), losses, metadata.get("user", {}), path
    )


def _save(
    directory: Path,
    state: TrainState,
    history: list[dict[str, Any]],
    losses: list[float],
    keep: int | None,
    metadata: Mapping[str, Any] | None,
) -> Path:
    step = int(state.step)
    if jax.process_index() != 0:  # under the multi-host runtime one process writes
        return directory / f"{_PREFIX}_{step:08d}.npz"
    info = {"history": history, "losses": losses}
    return checkpoint.save_step(
        directory,
        step,
        state,
        keep=keep,
        prefix=_PREFIX,
        metadata={"fit": info, "user": dict(metadata or {})},
    )


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[Callable[[], bool]]:
    """Turn the first Ctrl-C into a flag the loop checks between steps.

    A second Ctrl-C raises `KeyboardInterrupt` at once, as usual. Signal
    handlers can only be installed from the main thread; elsewhere Ctrl-C is
    left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if received:
            raise KeyboardInterrupt
        received.append(signum)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(received)
    finally:
        signal.signal(signal.SIGINT, previous)


class _Progress:
    """A tqdm progress bar when tqdm is installed and wanted, plain printed lines otherwise."""

    def __init__(self, enabled: bool, start: int, total: int, description: str):
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                pass
            else:
                self.bar = tqdm(
                    total=total, initial=start, desc=description, unit="step", dynamic_ncols=True
                )

    def update(self, loss: float | None) -> None:
        if self.bar is not None:
            if loss is not None:
                self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            self.bar.update()

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def fit(
    state: TrainState,
    step_fn: StepFn,
    batches: Callable[[int], Batch],
    *,
    steps: int,
    log_every: int = 100,
    evaluate: Callable[[PyTree], Mapping[str, float]] | None = None,
    eval_every: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    keep: int | None = 3,
    resume_from: Restored | None = None,
    metadata: Mapping[str, Any] | None = None,
    progress: bool = True,
    description: str = "training",
) -> FitResult:
    """Train from `state.step` up to `steps` updates, logging, evaluating and checkpointing.

    Each iteration calls `step_fn(state, batches(step))`, where `step` is the
    number of updates applied so far, so batches depend only on the step and a
    resumed run sees exactly the batches it would have seen. The loop:

    - shows a progress bar with the live loss (tqdm, when installed and
      `progress` is true; otherwise it prints the log lines only);
    - every `log_every` steps (and at the first and last) logs the mean loss
      since the previous log, and every `eval_every` steps (and at the last)
      adds `evaluate(params)` to that entry;
    - stops with `NonFiniteLossError`, naming the step, as soon as a logged
      loss is NaN or infinite, without saving that state;
    - with `checkpoint_dir`, writes `ckpt_<step>.npz` there every
      `checkpoint_every` steps and after the last step (atomically, see
      `jaxrnn.checkpoint`), keeping the `keep` newest, with the history and
      losses so far and `metadata`;
    - on Ctrl-C, finishes the current step, saves a checkpoint (with
      `checkpoint_dir`) and raises `TrainingInterrupted`.

    Args:
      state: where to start, e.g. `init_state(...)` or `restore(...).state`.
      step_fn: `step_fn(state, batch) -> (state, loss)`, e.g. from
        `make_train_step`.
      batches: `batches(step) -> batch` for `step` in `[state.step, steps)`.
      steps: the total number of updates to reach, counting those already in
        `state.step`.
      log_every: steps between log entries, at least 1.
      evaluate: optional `evaluate(params) -> {name: float}`, e.g. a
        validation loss.
      eval_every: steps between evaluations (a multiple of `log_every`;
        default: only after the last step).
      checkpoint_dir: folder for checkpoints, created if needed; None saves
        nothing.
      checkpoint_every: steps between checkpoints (default: only at the end
        and on Ctrl-C).
      keep: how many checkpoints to keep, or None for all.
      resume_from: the `Restored` that `state` came from, so that the history
        and per-step losses continue its own.
      metadata: JSON-serialisable mapping saved with every checkpoint (e.g. the
        command-line config); `restore` returns it.
      progress: show a progress bar.
      description: the progress bar's label.

    Returns:
      A `FitResult`: the final state, the history, every step's loss and the
      last checkpoint written.

    To stop early, raise `StopTraining` from `evaluate`: `fit` saves and returns. Any
    other exception from `evaluate` is raised after `fit` has saved a checkpoint of
    the state it was evaluating, so the optimizer state is never lost.

    Raises:
      NonFiniteLossError: a loss was NaN or infinite.
      TrainingInterrupted: Ctrl-C (a `KeyboardInterrupt`).
      ValueError: `steps` is below `state.step`.
      ValueError: `steps`, `log_every`, `eval_every`, `checkpoint_every` or
        `keep` is not a positive int, or `eval_every` is not a multiple of
        `log_every`.
      TypeError: `step_fn` or `batches` is not callable.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, jaxrnn as jr
      >>> cell = jr.rnn(8)
      >>> xs = jax.random.normal(jax.random.key(0), (6, 4, 3))  # (T, batch, features)
      >>> def loss_fn(params, xs, key):
      ...     return jnp.mean(jr.unroll(cell, params, xs)[1] ** 2)
      >>> optimizer = optax.adam(1e-2)
      >>> state = jr.train.init_state(
      ...     cell.init(jax.random.key(1), input_size=3), optimizer, jax.random.key(2))
      >>> result = jr.train.fit(
      ...     state, jr.train.make_train_step(loss_fn, optimizer), lambda step: xs,
      ...     steps=20, log_every=10, progress=False)  # doctest: +ELLIPSIS
      step  1/20  train loss 0.3...
      step 10/20  train loss 0.2...
      step 20/20  train loss 0.1...
      >>> int(result.state.step), result.losses.shape, bool(result.losses[-1] < result.losses[0])
      (20, (20,), True)
    """
    steps = checks.positive_int(steps, "steps")
    log_every = checks.positive_int(log_every, "log_every")
    if eval_every is not None:
        eval_every = checks.positive_int(eval_every, "eval_every")
        if eval_every % log_every:
            raise ValueError(
                f"eval_every ({eval_every}) must be a multiple of log_every ({log_every}): "
                "evaluations are added to log entries"
            )
    if checkpoint_every is not None:
        checkpoint_every = checks.positive_int(checkpoint_every, "checkpoint_every")
    if keep is not None:
        keep = checks.positive_int(keep, "keep")
    if not callable(step_fn):
        raise TypeError(f"step_fn must be callable, got {type(step_fn).__name__}")
    if not callable(batches):
        raise TypeError(f"batches must be callable (step -> batch), got {type(batches).__name__}")
    directory = None if checkpoint_dir is None else Path(checkpoint_dir)

    start = int(state.step)
    history = list(resume_from.history) if resume_from is not None else []
    losses = [float(v) for v in resume_from.losses] if resume_from is not None else []
    if len(losses) != start:
        raise ValueError(
            f"resume_from holds {len(losses)} per-step losses but state.step is {start}; "
            "pass the Restored that state came from"
        )
    last_checkpoint = resume_from.path if resume_from is not None else None
    if start > steps:
        raise ValueError(
            f"steps={steps} is below the step the state is at, {start} (a restored run "
            f"counts the steps it has done); ask for steps > {start} to train further"
        )
    if start == steps:
        return FitResult(state, history, np.asarray(losses, np.float64), last_checkpoint)

    pending: list[Array] = []  # device losses not yet copied to the host
    width = len(str(steps))
    bar = _Progress(progress, start, steps, description)

    def flush() -> None:
        """Copy pending losses to the host and stop at the first non-finite one."""
        values = np.asarray(jax.device_get(pending), dtype=np.float64).reshape(-1)
        first = len(losses)
        pending.clear()
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            bar.close()
            step, value = first + int(bad[0]) + 1, float(values[bad[0]])
            where = (
                f"; the newest checkpoint, {str(last_checkpoint)!r}, holds the last saved "
                "finite state"
                if last_checkpoint is not None
                else ""
            )
            raise NonFiniteLossError(
                f"the training loss became {value} at step {step}, so training stopped there"
                f"{where}. A smaller learning rate or gradient clipping usually helps.",
                step,
                value,
                last_checkpoint,
            )
        losses.extend(values.tolist())

    def save() -> Path | None:
        if directory is None:
            return last_checkpoint
        return _save(directory, state, history, losses, keep, metadata)

    last_logged = start
    with _deferred_interrupt() as interrupted:
        for step in range(start, steps):
            state, loss = step_fn(state, batches(step))
            pending.append(loss)
            done = step + 1
            shown = None
            if done % 10 == 0 or done == start + 1:
                shown = float(loss)
            bar.update(shown)
            if done == start + 1 or done % log_every == 0 or done == steps:
                flush()
                entry: dict[str, Any] = {
                    "step": done,
                    "train_loss": float(np.mean(losses[last_logged:done])),
                }
                last_logged = done
                line = f"step {done:>{width}}/{steps}  train loss {entry['train_loss']:.4f}"
                stop = None
                if evaluate is not None and (
                    done == steps or (eval_every is not None and done % eval_every == 0)
                ):
                    try:
                        for name, value in evaluate(state.params).items():
                            entry[name] = float(value)
                            line += f"  {name} {float(value):.4f}"
                    except StopTraining as error:
                        stop = error
                        line += f"  stopped: {error}"
                    except BaseException:
                        # Keep the optimizer state of every step done: save, then re-raise.
                        history.append(entry)
                        bar.close()
                        if directory is not None:
                            save()
                        raise
                history.append(entry)
                bar.write(line)
                if stop is not None:
                    last_checkpoint = save()
                    bar.close()
                    return FitResult(
                        state, history, np.asarray(losses, np.float64), last_checkpoint
                    )
            if directory is not None and (
                done == steps or (checkpoint_every is not None and done % checkpoint_every == 0)
            ):
                flush()
                last_checkpoint = save()
            if interrupted() and done < steps:
                flush()
                last_checkpoint = save()
                bar.close()
                where = (
                    f"; saved {str(last_checkpoint)!r}"
                    if directory is not None
                    else " (no checkpoint_dir)"
                )
                raise TrainingInterrupted(
                    f"interrupted after step {done}{where}", state, last_checkpoint
                )
    bar.close()
    return FitResult(state, history, np.asarray(losses, np.float64), last_checkpoint)
