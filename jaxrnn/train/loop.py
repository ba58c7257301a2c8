"""The training loop: a train state, a jitted optax step, `fit` that checkpoints and resumes."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxrnn import checks
from jaxrnn.train import checkpoint

__all__ = [
    "FitResult",
    "NonFiniteLossError",
    "Restored",
    "ResumeError",
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
        raise TypeError(f"optimizer must be an optax transformation, got {optimizer!r}")


def _put(leaf: Any, sharding: NamedSharding) -> Array:
    """`leaf` placed by `sharding`; under the multi-host runtime every process passes all of it."""
    if isinstance(leaf, jax.Array) and leaf.sharding.is_equivalent_to(sharding, leaf.ndim):
        return leaf  # already placed, e.g. a global array built from each process's share
    return jax.make_array_from_process_local_data(sharding, leaf, np.shape(leaf))


def make_train_step(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    *,
    mesh: Mesh | None = None,
    batch_axis: int = 0,
) -> StepFn:
    """One optax update as a jitted function `step(state, batch) -> (state, loss)`.

    The step splits `state.key` into the key for the next step and a key for
    this one, computes `loss_fn(params, batch, key)` and its gradient, and
    applies `optimizer`'s update. The loss returned is the batch's loss before
    the update. optax's updates run under JAX's standard dtype promotion, so
    they work when the rest of the program uses `"strict"`.

    With `mesh`, the step is data parallel: every array of the batch is split
    along `batch_axis` across all the mesh's devices and the state is
    replicated on each (`jax.make_array_from_process_local_data` places what
    is not already placed so). Every device computes the gradient of its part,
    XLA sums them, and every device applies the same update: the losses are
    those of one device up to the order of floating-point sums. Under JAX's
    multi-host runtime every process passes the same whole batch, or a global
    `jax.Array` it built from its own share.

    Args:
      loss_fn: `loss_fn(params, batch, key) -> scalar`; `key` is a fresh PRNG
        key each step, for dropout or sampling (ignore it if nothing is random).
      optimizer: an optax gradient transformation.
      mesh: a `jax.sharding.Mesh`, e.g. `Mesh(jax.devices(), ("batch",))`, or
        None for one device.
      batch_axis: with `mesh`, the axis of every batch array that indexes
        examples: 1 for time-major `(T, batch, ...)` arrays, 0 for `(batch, ...)`.

    Returns:
      `step(state, batch) -> (new_state, loss)`, compiled once per batch shape.
      With `mesh` it raises a `ValueError` naming the array (by its key path)
      when a batch does not split evenly across the devices.

    Raises:
      TypeError: `loss_fn` is not callable, `optimizer` is not an optax
        transformation, `mesh` is not a `jax.sharding.Mesh` or `batch_axis` not an int.
      ValueError: `batch_axis` is negative.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, jaxrnn as jr
      >>> cell = jr.rnn(8)
      >>> def loss_fn(params, xs, key):
      ...     _, hs = jr.unroll(cell, params, xs)
      ...     return jnp.mean(hs**2)
      >>> optimizer = optax.sgd(0.1)
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> state = jr.train.init_state(params, optimizer, jax.random.key(1))
      >>> step = jr.train.make_train_step(loss_fn, optimizer)
      >>> xs = jnp.ones((5, 2, 3))  # (T, batch, features)
      >>> state, first = step(state, xs)
      >>> state, second = step(state, xs)
      >>> int(state.step), bool(second < first)
      (2, True)
      >>> mesh = jax.sharding.Mesh(jax.devices(), ("batch",))
      >>> sharded = jr.train.make_train_step(
      ...     loss_fn, optimizer, mesh=mesh, batch_axis=1
      ... )
      >>> state, loss = sharded(state, jnp.ones((5, 2 * len(jax.devices()), 3)))
      >>> state.params["w_h"].sharding.is_fully_replicated
      True
    """
    checks.function(loss_fn, "loss_fn", "loss_fn(params, batch, key) -> loss")
    _check_optimizer(optimizer)

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, Array]:
        key, step_key = jax.random.split(state.key)
        loss, grads = jax.value_and_grad(loss_fn)(state.params, batch, step_key)
        # optax's own arithmetic mixes Python scalars and int32 counters, which
        # "strict" dtype promotion rejects.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
        return TrainState(state.step + 1, params, opt_state, key), loss

    if mesh is None:
        return jax.jit(step)
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh or None, got {type(mesh).__name__}")
    batch_axis = checks.non_negative_int(batch_axis, "batch_axis")
    replicated = NamedSharding(mesh, PartitionSpec())
    batched = NamedSharding(mesh, PartitionSpec(*[None] * batch_axis, mesh.axis_names))
    jitted = jax.jit(step, out_shardings=replicated)

    def split(path: tuple, leaf: Any) -> Array:
        shape = np.shape(leaf)
        if len(shape) <= batch_axis or shape[batch_axis] % mesh.size:
            raise ValueError(
                f"batch{jax.tree_util.keystr(path)} has shape {checks.shape_str(shape)}; its "
                f"axis batch_axis={batch_axis} must split evenly across the {mesh.size} devices"
            )
        return _put(leaf, batched)

    def sharded_step(state: TrainState, batch: Batch) -> tuple[TrainState, Array]:
        state = jax.tree.map(lambda leaf: _put(leaf, replicated), state)
        return jitted(state, jax.tree_util.tree_map_with_path(split, batch))

    return sharded_step


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; `fit` stopped without saving that state.

    Attributes:
      step: the 1-based number of the update whose loss was not finite.
      loss: that loss.
      checkpoint: the newest checkpoint `fit` wrote before it, or None.
    """

    def __init__(self, step: int, loss: float, checkpoint: Path | None):
        saved = f"; {str(checkpoint)!r} holds the last state saved" if checkpoint else ""
        super().__init__(f"the training loss became {loss} at step {step}{saved}")
        self.step, self.loss, self.checkpoint = step, float(loss), checkpoint


class ResumeError(ValueError):
    """`fit` refused to start: its `resume`, `config` or `steps` do not go with the run on disk.

    Raised before the first step, so nothing was trained or saved: `resume` without
    a `checkpoint_dir`; a `checkpoint_dir` that holds a run without `resume`; a
    checkpoint to resume that was saved with another `config`; or `steps` below the
    step the state (or the checkpoint resumed) is at. A script can report it as a
    usage error while a `ValueError` raised during training (say by `evaluate`)
    stays an error. It is a `ValueError`.

    Attributes:
      step: the step the run is at when `steps` is below it, else None.
    """

    def __init__(self, message: str, step: int | None = None):
        super().__init__(message)
        self.step = step


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped `fit` between two steps, after it saved a checkpoint (if it had a directory).

    A `KeyboardInterrupt`, so a script that does not catch it stops as on any
    Ctrl-C. A script that catches it can print how to resume: the same command
    with its resume option, since `fit(..., resume=True)` continues from
    `checkpoint`'s folder.

    Attributes:
      state: the state after the last completed step.
      checkpoint: the checkpoint written for it, or None without `checkpoint_dir`.
    """

    def __init__(self, message: str, state: TrainState, checkpoint: Path | None):
        super().__init__(message)
        self.state, self.checkpoint = state, checkpoint


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
      losses: the loss of every step, float64 `(steps,)`, including those of
        the run that was resumed (only those trained here when `state` was
        passed at a later step without `resume`).
      checkpoint: the last checkpoint written (or resumed from), or None.
      resumed_from: the step of the checkpoint this run resumed from, or None
        for a fresh start.
    """

    state: TrainState
    history: list[dict[str, Any]]
    losses: np.ndarray
    checkpoint: Path | None
    resumed_from: int | None


class Restored(NamedTuple):
    """A checkpoint read back by `restore`.

    Attributes:
      state: the saved `TrainState`, in the structure of `like`.
      history: the saved `FitResult.history` up to the checkpoint.
      losses: the saved per-step losses, float64 `(step,)`.
      config: the `config` given to `fit` when it saved.
      path: the file it came from.
    """

    state: TrainState
    history: list[dict[str, Any]]
    losses: np.ndarray
    config: dict[str, Any]
    path: Path


_PREFIX = "ckpt"


def restore(path: str | os.PathLike, like: TrainState) -> Restored | None:
    """Load a checkpoint `fit` wrote into `like`'s structure: a given file, or a directory's newest.

    `fit(..., resume=True)` calls it; call it yourself to load trained params,
    e.g. for inference. Given a directory (the `checkpoint_dir` of `fit`), its
    checkpoints are tried newest first; one that is truncated or corrupt is
    skipped with a `RuntimeWarning` that names it (see
    `jaxrnn.checkpoint.latest`), so a damaged last file falls back to the
    previous one.

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
      >>> _ = jr.train.fit(
      ...     fresh_state(),
      ...     step_fn,
      ...     lambda step: jnp.ones((3, 2)),
      ...     steps=5,
      ...     checkpoint_dir=directory,
      ...     progress=False,
      ... )  # doctest: +ELLIPSIS
      step 1/5  train loss ...
      step 5/5  train loss ...
      >>> restored = jr.train.restore(directory, like=fresh_state())
      >>> restored.path.name, int(restored.state.step), restored.losses.shape
      ('ckpt_00000005.npz', 5, (5,))
    """
    path = Path(path) if Path(path).is_file() else checkpoint.latest(path, prefix=_PREFIX)
    if path is None:
        return None
    saved = checkpoint.read_metadata(path)
    losses = np.asarray(saved.get("losses", []), np.float64)
    state = checkpoint.load(path, like=like)
    return Restored(state, saved.get("history", []), losses, saved.get("config", {}), path)


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
    resume: bool = False,
    config: Mapping[str, Any] | None = None,
    progress: bool = True,
    description: str = "training",
) -> FitResult:
    """Train up to `steps` updates, resuming, logging, evaluating and checkpointing.

    Each iteration calls `step_fn(state, batches(step))`, where `step` is the
    number of updates applied so far, so batches depend only on the step and a
    resumed run sees exactly the batches it would have seen. The loop:

    - with `resume=True`, first restores the newest valid checkpoint in
      `checkpoint_dir` (`restore`, with `state` as the template) and goes on from
      it, history and per-step losses included; an empty or missing folder
      starts from `state` and says so. Without `resume`, a `checkpoint_dir` that
      already holds checkpoints is refused, never mixed with a new run;
    - shows a progress bar with the last logged loss (tqdm, when installed and
      `progress` is true; otherwise it prints the log lines only);
    - every `log_every` steps (and at the first and last) logs the mean loss
      since the previous log, and every `eval_every` steps (and at the last)
      adds `evaluate(params)` to that entry;
    - stops with `NonFiniteLossError`, naming the step, as soon as a logged
      loss is NaN or infinite, without saving that state;
    - with `checkpoint_dir`, writes `ckpt_<step>.npz` there every
      `checkpoint_every` steps and after the last step (atomically, see
      `jaxrnn.checkpoint`), keeping the `keep` newest, with the history and
      losses so far and `config`;
    - on Ctrl-C, finishes the current step, saves a checkpoint (with
      `checkpoint_dir`) and raises `TrainingInterrupted`.

    To stop early, raise `StopTraining` from `evaluate`: `fit` saves and returns. Any
    other exception (from `evaluate`, `step_fn` or `batches`) is raised after `fit`
    has saved a checkpoint of the last completed step, so the optimizer state is
    never lost; an error before the first step saves nothing, so that the same
    call can run again once it is fixed.

    Args:
      state: where a fresh run starts, e.g. `init_state(...)`; with `resume` it
        is also the template the checkpoint is loaded into.
      step_fn: `step_fn(state, batch) -> (state, loss)`, e.g. from
        `make_train_step`.
      batches: `batches(step) -> batch` for `step` in `[state.step, steps)`.
      steps: the total number of updates to reach, counting those already done.
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
      resume: continue the run whose checkpoints are in `checkpoint_dir`.
      config: JSON-serialisable mapping that defines the run (model sizes, data,
        learning rate), saved with every checkpoint; resuming a checkpoint saved
        with another config is refused. `restore` returns it.
      progress: show a progress bar.
      description: the progress bar's label.

    Returns:
      A `FitResult`: the final state, the history, every step's loss, the
      last checkpoint written and the step it resumed from.

    Raises:
      NonFiniteLossError: a loss was NaN or infinite.
      TrainingInterrupted: Ctrl-C (a `KeyboardInterrupt`).
      ResumeError: before the first step, a `ValueError`: `steps` is below the
        step of `state` or of the restored checkpoint (its `step` attribute);
        `resume` without `checkpoint_dir`; `checkpoint_dir` holds a run and
        `resume` is false; the restored checkpoint's config differs from
        `config` (the message names the differing keys).
      ValueError: the restored checkpoint does not fit `state` (see `restore`).
      ValueError: `steps`, `log_every`, `eval_every`, `checkpoint_every` or
        `keep` is not a positive int, or `eval_every` is not a multiple of
        `log_every`.
      TypeError: `step_fn` or `batches` is not callable, `resume` is not a
        bool or `config` is not JSON-serialisable.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, tempfile, jaxrnn as jr
      >>> cell = jr.rnn(8)
      >>> xs = jax.random.normal(jax.random.key(0), (6, 4, 3))  # (T, batch, features)
      >>> def loss_fn(params, xs, key):
      ...     return jnp.mean(jr.unroll(cell, params, xs)[1] ** 2)
      >>> optimizer = optax.adam(1e-2)
      >>> params = cell.init(jax.random.key(1), input_size=3)
      >>> state = jr.train.init_state(params, optimizer, jax.random.key(2))
      >>> step_fn = jr.train.make_train_step(loss_fn, optimizer)
      >>> def batches(step):
      ...     return xs
      >>> run = dict(log_every=10, progress=False, config={"hidden": 8})
      >>> run["checkpoint_dir"] = tempfile.mkdtemp()
      >>> result = jr.train.fit(
      ...     state, step_fn, batches, steps=20, **run
      ... )  # doctest: +ELLIPSIS
      step  1/20  train loss 0.3...
      step 10/20  train loss 0.2...
      step 20/20  train loss 0.1...
      >>> losses = result.losses
      >>> int(result.state.step), losses.shape, bool(losses[-1] < losses[0])
      (20, (20,), True)
      >>> more = jr.train.fit(
      ...     state, step_fn, batches, steps=30, resume=True, **run
      ... )  # doctest: +ELLIPSIS
      resuming from .../ckpt_00000020.npz (step 20)
      step 21/30  train loss 0.1...
      step 30/30  train loss 0.1...
      >>> more.resumed_from, more.losses.shape
      (20, (30,))
    """
    optional = {"eval_every": eval_every, "checkpoint_every": checkpoint_every, "keep": keep}
    for name, value in {"steps": steps, "log_every": log_every, **optional}.items():
        if value is not None:
            checks.positive_int(value, name)
    if eval_every is not None and eval_every % log_every:
        raise ValueError(f"eval_every ({eval_every}) must be a multiple of log_every ({log_every})")
    checks.function(step_fn, "step_fn", "step_fn(state, batch) -> (state, loss)")
    checks.function(batches, "batches", "batches(step) -> batch")
    try:  # a JSON round trip, so that it compares equal to what a checkpoint holds
        config = json.loads(json.dumps(dict(config or {})))
    except TypeError as e:
        raise TypeError(f"config must be JSON-serialisable: {e}") from None
    directory = None if checkpoint_dir is None else Path(checkpoint_dir)
    if checks.boolean(resume, "resume") and directory is None:
        raise ResumeError("resume=True needs the checkpoint_dir of the run to resume")
    if directory is not None and not resume and any(directory.glob(f"{_PREFIX}_*.npz")):
        raise ResumeError(f"checkpoint_dir {str(directory)!r} holds a run; resume=True resumes it")
    newest = checkpoint.latest(directory, prefix=_PREFIX) if resume else None
    history, losses, last, resumed_from = [], [], None, None
    if newest is not None:  # the config first: another model would fail to load with less clue
        saved = checkpoint.read_metadata(newest).get("config", {})
        differ = [k for k in sorted(config.keys() | saved.keys()) if config.get(k) != saved.get(k)]
        if differ:
            changes = ", ".join(f"{k} {saved.get(k)!r} (now {config.get(k)!r})" for k in differ)
            raise ResumeError(f"{newest} was made with another config: {changes}")
        restored = restore(newest, like=state)
        state, history, losses = restored.state, restored.history, restored.losses.tolist()
        last, resumed_from = newest, int(state.step)
        print(f"resuming from {last} (step {resumed_from})", flush=True)
    elif resume:
        print(f"no checkpoint in {str(directory)!r}: starting from step 0", flush=True)
    start = int(state.step)
    if start > steps:
        raise ResumeError(f"steps={steps} is below the step the state is at, {start}", start)
    pending: list[Array] = []  # device losses not yet copied to the host

    def flush(done: int) -> None:
        """Copy pending losses to the host and stop at the first non-finite one."""
        values = np.asarray(jax.device_get(pending), np.float64).reshape(-1)
        pending.clear()
        losses.extend(values.tolist())
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise NonFiniteLossError(done - len(values) + int(bad[0]) + 1, values[bad[0]], last)

    def save() -> None:
        nonlocal last
        flush(int(state.step))
        if directory is not None:
            last = directory / f"{_PREFIX}_{int(state.step):08d}.npz"
            if jax.process_index() == 0:  # under the multi-host runtime one process writes
                meta = {"history": history, "losses": losses, "config": config}
                checkpoint.save_step(directory, int(state.step), state, keep=keep, metadata=meta)

    def on_ctrl_c(signum: int, frame: Any) -> None:
        if interrupted:  # the second Ctrl-C stops at once
            raise KeyboardInterrupt
        interrupted.append(signum)  # the first stops after the current step

    try:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start, desc=description, unit="step", disable=not progress)
    except ImportError:  # without tqdm, only the log lines are printed
        bar = SimpleNamespace(write=lambda line: print(line, flush=True))
        bar.update = bar.set_postfix = bar.close = lambda *args, **kwargs: None
    interrupted: list[int] = []
    handles_signals = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_ctrl_c) if handles_signals else None
    try:
        for done in range(start + 1, steps + 1):  # `done` updates after this step
            state, loss = step_fn(state, batches(done - 1))
            pending.append(loss)
            bar.update()
            if done == start + 1 or done % log_every == 0 or done == steps:
                flush(done)
                since = history[-1]["step"] if history else start  # the previous entry
                mean = float(np.mean(losses[since - done :]))
                history.append({"step": done, "train_loss": mean})
                bar.set_postfix(loss=f"{mean:.4f}", refresh=False)
                if evaluate is not None and (done == steps or done % (eval_every or steps) == 0):
                    history[-1].update({k: float(v) for k, v in evaluate(state.params).items()})
                logged = list(history[-1].items())[1:]
                line = "".join(f"  {k.replace('_', ' ')} {v:.4f}" for k, v in logged)
                bar.write(f"step {done:>{len(str(steps))}}/{steps}{line}")
            if done == steps or done % (checkpoint_every or steps) == 0 or interrupted:
                save()
            if interrupted and done < steps:
                where = f"; saved {str(last)!r}" if directory else " (no checkpoint_dir)"
                raise TrainingInterrupted(f"interrupted after step {done}{where}", state, last)
    except StopTraining as stop:
        bar.write(f"stopped after step {int(state.step)}: {stop}")
        save()
    except Exception as error:
        if not isinstance(error, NonFiniteLossError) and int(state.step) > start:
            save()  # keep the optimizer state of every step done
        raise
    finally:
        bar.close()
        if handles_signals:
            signal.signal(signal.SIGINT, previous)
    return FitResult(state, history, np.asarray(losses, np.float64), last, resumed_from)
