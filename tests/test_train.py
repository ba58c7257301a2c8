"""jaxrnn.train: the step, the loop, resuming bit for bit, faults, and data parallelism."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh

import jaxrnn as jr
from jaxrnn import train

CELL = jr.gru(6)
OPTIMIZER = optax.adam(1e-2)
T, BATCH, FEATURES = 7, 4, 3


def loss_fn(params, batch, key):
    xs, targets = batch
    keep = jax.random.bernoulli(key, 0.9, xs.shape)  # uses the step's key, like dropout
    _, hs = jr.unroll(CELL, params, jnp.where(keep, xs, jnp.zeros_like(xs)))
    return jnp.mean((hs[..., :1] - targets) ** 2)


def batches(step: int):
    """A batch that depends on the step number only."""
    rng = np.random.default_rng(step)
    xs = rng.normal(size=(T, BATCH, FEATURES)).astype(np.float32)
    return xs, np.cumsum(xs[..., :1], axis=0).astype(np.float32) / 4


def fresh_state(seed: int = 0) -> train.TrainState:
    params = CELL.init(jax.random.key(seed), input_size=FEATURES)
    return train.init_state(params, OPTIMIZER, jax.random.key(seed + 100))


STEP = train.make_train_step(loss_fn, OPTIMIZER)


def assert_trees_equal(a, b):
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_step_updates_params_key_and_counter():
    state = fresh_state()
    new, loss = STEP(state, batches(0))
    assert int(new.step) == 1 and loss.shape == () and np.isfinite(float(loss))
    assert not np.array_equal(jax.random.key_data(new.key), jax.random.key_data(state.key))
    assert not np.array_equal(new.params["w_h"], state.params["w_h"])
    # The loss is the loss of the params before the update, computed with the step's key.
    _, step_key = jax.random.split(state.key)
    np.testing.assert_allclose(loss, loss_fn(state.params, batches(0), step_key), rtol=1e-6)


def test_fit_lowers_the_loss_and_logs(capsys):
    result = train.fit(fresh_state(), STEP, batches, steps=60, log_every=20, progress=False)
    assert [e["step"] for e in result.history] == [1, 20, 40, 60]
    assert result.losses.shape == (60,) and int(result.state.step) == 60
    assert result.losses[-20:].mean() < 0.7 * result.losses[:20].mean()
    np.testing.assert_allclose(result.history[-1]["train_loss"], result.losses[40:].mean())
    assert "step 60/60  train loss" in capsys.readouterr().out


def test_fit_evaluates_at_eval_every_and_at_the_end():
    calls = []

    def evaluate(params):
        calls.append(1)
        return {"val_loss": loss_fn(params, batches(10_000), jax.random.key(0))}

    result = train.fit(
        fresh_state(),
        STEP,
        batches,
        steps=25,
        log_every=5,
        eval_every=10,
        evaluate=evaluate,
        progress=False,
    )
    evaluated = [e["step"] for e in result.history if "val_loss" in e]
    assert evaluated == [10, 20, 25] and len(calls) == 3


def test_fit_with_a_progress_bar(capsys):
    pytest.importorskip("tqdm")
    train.fit(fresh_state(), STEP, batches, steps=3, log_every=1, description="demo")
    err = capsys.readouterr().err
    assert "demo" in err and "3/3" in err


def test_resume_is_bit_identical(tmp_path, capsys):
    """2N steps in one go == N steps, then fit(resume=True) from a fresh state for N more."""
    straight = train.fit(fresh_state(), STEP, batches, steps=12, log_every=4, progress=False)

    first = train.fit(
        fresh_state(), STEP, batches, steps=6, log_every=4, checkpoint_dir=tmp_path, progress=False
    )
    assert first.checkpoint == tmp_path / "ckpt_00000006.npz" and first.resumed_from is None
    capsys.readouterr()
    second = train.fit(
        fresh_state(seed=7),  # another seed: only the template of the checkpoint
        STEP,
        batches,
        steps=12,
        log_every=4,
        checkpoint_dir=tmp_path,
        resume=True,
        progress=False,
    )
    assert f"resuming from {tmp_path / 'ckpt_00000006.npz'} (step 6)" in capsys.readouterr().out
    assert second.resumed_from == 6
    assert_trees_equal(second.state, straight.state)
    np.testing.assert_array_equal(second.losses, straight.losses)
    assert [e["step"] for e in second.history] == [1, 4, 6, 7, 8, 12]  # 7: first after resume
    assert train.restore(tmp_path, like=fresh_state()).history == second.history


def test_resume_of_an_empty_folder_starts_fresh_and_says_so(tmp_path, capsys):
    directory = tmp_path / "new"
    result = train.fit(
        fresh_state(), STEP, batches, steps=3, checkpoint_dir=directory, resume=True,
        progress=False,
    )  # fmt: skip
    out = capsys.readouterr().out
    assert f"no checkpoint in {str(directory)!r}: starting from step 0" in out
    assert result.resumed_from is None and int(result.state.step) == 3
    assert result.checkpoint == directory / "ckpt_00000003.npz"
    straight = train.fit(fresh_state(), STEP, batches, steps=3, progress=False)
    assert_trees_equal(result.state, straight.state)


def test_a_folder_that_holds_a_run_is_never_mixed_with_a_new_one(tmp_path):
    train.fit(fresh_state(), STEP, batches, steps=2, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(
        train.ResumeError, match=r"checkpoint_dir '.*' holds a run; resume=True resumes it"
    ) as info:
        train.fit(fresh_state(), STEP, batches, steps=4, checkpoint_dir=tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt_00000002.npz"]  # untouched
    assert info.value.step is None
    with pytest.raises(train.ResumeError, match="resume=True needs the checkpoint_dir"):
        train.fit(fresh_state(), STEP, batches, steps=4, resume=True, progress=False)
    with pytest.raises(TypeError, match="resume must be a bool"):
        train.fit(fresh_state(), STEP, batches, steps=4, checkpoint_dir=tmp_path, resume="yes")


def test_resume_refuses_another_config_naming_the_keys(tmp_path):
    config = {"hidden": 6, "lr": 0.01, "data": "a.txt", "sizes": (1, 2)}
    train.fit(
        fresh_state(), STEP, batches, steps=2, checkpoint_dir=tmp_path, config=config,
        progress=False,
    )  # fmt: skip
    other = {**config, "hidden": 8, "lr": 0.02}
    with pytest.raises(
        train.ResumeError,
        match=r"ckpt_00000002\.npz was made with another config: "
        r"hidden 6 \(now 8\), lr 0\.01 \(now 0\.02\)$",
    ):
        train.fit(
            fresh_state(), STEP, batches, steps=4, checkpoint_dir=tmp_path, config=other,
            resume=True, progress=False,
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"another config: data 'a\.txt' \(now None\)"):
        train.fit(
            fresh_state(), STEP, batches, steps=4, checkpoint_dir=tmp_path,
            config={k: v for k, v in config.items() if k != "data"}, resume=True, progress=False,
        )  # fmt: skip
    # Another config is named before the state is loaded, even when it would not load.
    smaller = jr.gru(5).init(jax.random.key(0), input_size=FEATURES)
    with pytest.raises(ValueError, match=r"another config: hidden 6 \(now 5\)"):
        train.fit(
            train.init_state(smaller, OPTIMIZER, jax.random.key(0)), STEP, batches, steps=4,
            checkpoint_dir=tmp_path, config={**config, "hidden": 5}, resume=True,
        )  # fmt: skip
    # The same config resumes (the tuple compares equal to the list the checkpoint holds).
    result = train.fit(
        fresh_state(), STEP, batches, steps=4, checkpoint_dir=tmp_path, config=config,
        resume=True, progress=False,
    )  # fmt: skip
    assert result.resumed_from == 2 and int(result.state.step) == 4
    assert train.restore(tmp_path, like=fresh_state()).config == {**config, "sizes": [1, 2]}
    with pytest.raises(TypeError, match="config must be JSON-serialisable"):
        train.fit(fresh_state(), STEP, batches, steps=4, config={"out": tmp_path})


def test_checkpoints_every_n_steps_keep_the_newest(tmp_path):
    train.fit(
        fresh_state(),
        STEP,
        batches,
        steps=10,
        checkpoint_dir=tmp_path,
        checkpoint_every=3,
        keep=2,
        config={"hidden": 6},
        progress=False,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt_00000009.npz", "ckpt_00000010.npz"]
    restored = train.restore(tmp_path, like=fresh_state())
    assert restored.config == {"hidden": 6}
    assert restored.losses.shape == (10,)


def test_resume_skips_a_truncated_checkpoint_and_goes_on_from_the_previous_one(tmp_path):
    straight = train.fit(fresh_state(), STEP, batches, steps=8, progress=False)
    train.fit(
        fresh_state(),
        STEP,
        batches,
        steps=6,
        checkpoint_dir=tmp_path,
        checkpoint_every=3,
        progress=False,
    )
    newest = tmp_path / "ckpt_00000006.npz"
    newest.write_bytes(newest.read_bytes()[:-100])
    with pytest.raises(ValueError, match="ckpt_00000006"):
        jr.checkpoint.load(newest)
    with pytest.warns(RuntimeWarning, match="skipping checkpoint .*ckpt_00000006"):
        restored = train.restore(tmp_path, like=fresh_state())
    assert restored.path.name == "ckpt_00000003.npz" and int(restored.state.step) == 3
    with pytest.warns(RuntimeWarning, match="skipping checkpoint .*ckpt_00000006"):
        resumed = train.fit(
            fresh_state(), STEP, batches, steps=8, checkpoint_dir=tmp_path, resume=True,
            progress=False,
        )  # fmt: skip
    assert resumed.resumed_from == 3
    assert_trees_equal(resumed.state, straight.state)
    np.testing.assert_array_equal(resumed.losses, straight.losses)


def test_restore_of_another_model_names_the_leaf(tmp_path):
    train.fit(fresh_state(), STEP, batches, steps=1, checkpoint_dir=tmp_path, progress=False)
    other = jr.gru(5)
    params = other.init(jax.random.key(0), input_size=FEATURES)
    like = train.init_state(params, OPTIMIZER, jax.random.key(0))
    with pytest.raises(ValueError, match=r"leaf \.params\['b'\].*shape \(15,\).*shape \(18,\)"):
        train.restore(tmp_path, like=like)
    with pytest.raises(ValueError, match=r"leaf \.params\['b'\]"):
        train.fit(like, STEP, batches, steps=2, checkpoint_dir=tmp_path, resume=True)


def test_restore_of_an_empty_or_missing_directory_is_none(tmp_path):
    assert train.restore(tmp_path, like=fresh_state()) is None
    assert train.restore(tmp_path / "missing", like=fresh_state()) is None


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_loss_stops_training_naming_the_step(tmp_path, bad):
    def poisoned(step):
        xs, targets = batches(step)
        if step == 6:  # the 7th update
            xs = np.full_like(xs, bad)
        return xs, targets

    with pytest.raises(train.NonFiniteLossError, match=r"at step 7\b") as info:
        train.fit(
            fresh_state(),
            STEP,
            poisoned,
            steps=20,
            log_every=10,
            checkpoint_dir=tmp_path,
            checkpoint_every=5,
            progress=False,
        )
    assert info.value.step == 7 and not np.isfinite(info.value.loss)
    assert info.value.checkpoint == tmp_path / "ckpt_00000005.npz"
    assert str(info.value.checkpoint) in str(info.value)
    # The non-finite state was never written: the newest checkpoint is still step 5.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt_00000005.npz"]


def test_ctrl_c_saves_a_checkpoint_and_the_run_resumes(tmp_path):
    straight = train.fit(fresh_state(), STEP, batches, steps=9, progress=False)

    def step_then_interrupt(state, batch):
        new_state, loss = STEP(state, batch)
        if int(new_state.step) == 4:
            signal.raise_signal(signal.SIGINT)
        return new_state, loss

    with pytest.raises(train.TrainingInterrupted, match=r"after step 4; saved '.*ckpt_0+4") as info:
        train.fit(
            fresh_state(),
            step_then_interrupt,
            batches,
            steps=9,
            checkpoint_dir=tmp_path,
            progress=False,
        )
    assert isinstance(info.value, KeyboardInterrupt)
    assert int(info.value.state.step) == 4
    assert info.value.checkpoint == tmp_path / "ckpt_00000004.npz"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored

    resumed = train.fit(
        fresh_state(), STEP, batches, steps=9, checkpoint_dir=tmp_path, resume=True,
        progress=False,
    )  # fmt: skip
    assert resumed.resumed_from == 4
    assert_trees_equal(resumed.state, straight.state)
    np.testing.assert_array_equal(resumed.losses, straight.losses)


def test_ctrl_c_without_a_checkpoint_dir_says_so():
    def step_then_interrupt(state, batch):
        signal.raise_signal(signal.SIGINT)
        return STEP(state, batch)

    with pytest.raises(
        train.TrainingInterrupted, match=r"after step 1 \(no checkpoint_dir\)"
    ) as info:
        train.fit(fresh_state(), step_then_interrupt, batches, steps=5, progress=False)
    assert info.value.checkpoint is None and int(info.value.state.step) == 1


def test_fit_returns_at_once_when_the_state_is_already_there(tmp_path):
    train.fit(fresh_state(), STEP, batches, steps=3, checkpoint_dir=tmp_path, progress=False)
    kwargs = {"checkpoint_dir": tmp_path, "resume": True, "progress": False}
    result = train.fit(fresh_state(), STEP, batches, steps=3, **kwargs)
    assert int(result.state.step) == 3 and result.losses.shape == (3,)
    assert result.resumed_from == 3 and result.checkpoint == tmp_path / "ckpt_00000003.npz"
    with pytest.raises(
        train.ResumeError, match=r"steps=2 is below the step the state is at, 3"
    ) as info:
        train.fit(fresh_state(), STEP, batches, steps=2, **kwargs)
    assert info.value.step == 3 and isinstance(info.value, ValueError)


def test_stop_training_from_evaluate_saves_and_returns(tmp_path, capsys):
    def evaluate(params):
        raise train.StopTraining("patience ran out")

    result = train.fit(
        fresh_state(), STEP, batches, steps=20, log_every=2, eval_every=4, evaluate=evaluate,
        checkpoint_dir=tmp_path, progress=False,
    )  # fmt: skip
    assert int(result.state.step) == 4 and result.checkpoint == tmp_path / "ckpt_00000004.npz"
    assert "stopped after step 4: patience ran out" in capsys.readouterr().out
    straight = train.fit(fresh_state(), STEP, batches, steps=4, progress=False)
    assert_trees_equal(train.restore(tmp_path, like=fresh_state()).state, straight.state)


def test_an_error_in_evaluate_keeps_the_state_in_a_checkpoint(tmp_path):
    def evaluate(params):
        raise RuntimeError("the validation set is gone")

    with pytest.raises(RuntimeError, match="the validation set is gone"):
        train.fit(
            fresh_state(), STEP, batches, steps=20, log_every=3, eval_every=6,
            evaluate=evaluate, checkpoint_dir=tmp_path, progress=False,
        )  # fmt: skip
    restored = train.restore(tmp_path, like=fresh_state())
    straight = train.fit(fresh_state(), STEP, batches, steps=6, progress=False)
    assert int(restored.state.step) == 6
    assert_trees_equal(restored.state, straight.state)


def test_an_error_in_a_step_keeps_the_steps_done_but_never_a_fresh_state(tmp_path):
    def failing_from(first_bad):
        def failing_batches(step):
            if step >= first_bad:
                raise OSError("the data disk is gone")
            return batches(step)

        return failing_batches

    with pytest.raises(OSError, match="disk is gone"):
        train.fit(
            fresh_state(), STEP, failing_from(5), steps=20, checkpoint_dir=tmp_path, progress=False
        )
    restored = train.restore(tmp_path, like=fresh_state())
    assert int(restored.state.step) == 5 and restored.losses.shape == (5,)
    # Failing before the first step writes nothing, so the same command can run again.
    with pytest.raises(OSError, match="disk is gone"):
        train.fit(
            fresh_state(), STEP, failing_from(0), steps=20, checkpoint_dir=tmp_path / "b",
            progress=False,
        )  # fmt: skip
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"steps": 0}, ValueError, "steps must be a positive int"),
        ({"steps": 2.5}, TypeError, "steps must be a positive int"),
        ({"log_every": 0}, ValueError, "log_every"),
        ({"eval_every": 15, "log_every": 10}, ValueError, r"eval_every \(15\).*log_every \(10\)"),
        ({"checkpoint_every": -1}, ValueError, "checkpoint_every"),
        ({"keep": 0}, ValueError, "keep"),
    ],
)
def test_fit_rejects_bad_settings(kwargs, error, match):
    settings = {"steps": 5, **kwargs}
    with pytest.raises(error, match=match):
        train.fit(fresh_state(), STEP, batches, progress=False, **settings)


def test_fit_rejects_uncallables():
    with pytest.raises(TypeError, match="step_fn must be a function"):
        train.fit(fresh_state(), None, batches, steps=2)
    with pytest.raises(TypeError, match=r"batches must be a function batches\(step\) -> batch"):
        train.fit(fresh_state(), STEP, [batches(0)], steps=2)


def test_make_train_step_and_init_state_reject_bad_arguments():
    with pytest.raises(TypeError, match="optimizer must be an optax transformation"):
        train.make_train_step(loss_fn, "adam")
    with pytest.raises(TypeError, match="loss_fn must be a function"):
        train.make_train_step(None, OPTIMIZER)
    with pytest.raises(TypeError, match=r"mesh must be a jax\.sharding\.Mesh"):
        train.make_train_step(loss_fn, OPTIMIZER, mesh=jax.devices())
    mesh = Mesh(jax.devices(), ("batch",))
    with pytest.raises(ValueError, match="batch_axis must be a non-negative int"):
        train.make_train_step(loss_fn, OPTIMIZER, mesh=mesh, batch_axis=-1)
    with pytest.raises(TypeError, match="optimizer must be"):
        train.init_state({}, object(), jax.random.key(0))
    with pytest.raises(TypeError, match="key"):
        train.init_state({}, OPTIMIZER, 0)


def test_data_parallel_on_one_device_matches_the_plain_step():
    mesh = Mesh(jax.devices()[:1], ("batch",))
    sharded = train.make_train_step(loss_fn, OPTIMIZER, mesh=mesh, batch_axis=1)
    plain_state = sharded_state = fresh_state()
    for step in range(3):
        plain_state, plain_loss = STEP(plain_state, batches(step))
        sharded_state, sharded_loss = sharded(sharded_state, batches(step))
        np.testing.assert_allclose(sharded_loss, plain_loss, rtol=1e-6)
    np.testing.assert_allclose(sharded_state.params["w_x"], plain_state.params["w_x"], rtol=1e-5)
    assert sharded_state.params["w_x"].sharding.mesh == mesh


def test_data_parallel_rejects_batches_it_cannot_split():
    mesh = Mesh(jax.devices(), ("batch",))
    sharded = train.make_train_step(loss_fn, OPTIMIZER, mesh=mesh, batch_axis=1)
    xs, targets = batches(0)
    with pytest.raises(ValueError, match=r"batch\[1\] has shape \(4,\); its axis batch_axis=1"):
        sharded(fresh_state(), (xs, targets[0, :, 0]))
    with pytest.raises(ValueError, match=r"batch\[0\]\['xs'\] has shape \(7,\)"):
        sharded(fresh_state(), ({"xs": xs[:, 0, 0]}, targets))


SHARDED_SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np, optax
    from jax.sharding import Mesh
    import jaxrnn as jr
    from jaxrnn import train

    assert jax.device_count() == 8, jax.devices()
    cell, optimizer = jr.lstm(16), optax.adam(1e-2)

    seen = []

    def loss_fn(params, batch, key):
        xs, targets = batch
        jax.debug.inspect_array_sharding(xs, callback=seen.append)
        _, hs = jr.unroll(cell, params, xs)
        return jnp.mean((hs[..., :1] - targets) ** 2)

    def batches(step):
        rng = np.random.default_rng(step)
        xs = rng.normal(size=(12, 32, 5)).astype(np.float32)  # (T, batch, features)
        return xs, np.cumsum(xs[..., :1], axis=0).astype(np.float32) / 4

    def run(mesh):
        params = cell.init(jax.random.key(0), input_size=5)
        state = train.init_state(params, optimizer, jax.random.key(1))
        step = train.make_train_step(loss_fn, optimizer, mesh=mesh, batch_axis=1)
        return train.fit(state, step, batches, steps=20, log_every=20, progress=False)

    mesh = Mesh(jax.devices(), ("batch",))
    sharded = run(mesh)
    # Inside the step each device held (12, 4, 5) of the (12, 32, 5) inputs.
    assert seen[0].shard_shape((12, 32, 5)) == (12, 4, 5), seen
    assert len(sharded.state.params["w_h"].sharding.device_set) == 8
    assert sharded.state.params["w_h"].sharding.is_fully_replicated
    step = train.make_train_step(loss_fn, optimizer, mesh=mesh, batch_axis=1)
    xs, targets = batches(0)
    try:
        step(sharded.state, (xs[:, :12], targets[:, :12]))
    except ValueError as e:
        assert "batch[0] has shape (12, 12, 5); its axis batch_axis=1 must split evenly" in str(e)
        assert "across the 8 devices" in str(e)
    else:
        raise AssertionError("a batch of 12 was split across 8 devices")
    single = run(None)
    rel = np.abs(sharded.losses - single.losses) / np.abs(single.losses)
    params_diff = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(jax.tree.leaves(sharded.state.params), jax.tree.leaves(single.state.params))
    )
    first, last = single.losses[0], single.losses[-1]
    print(f"RESULT {rel.max():.3e} {params_diff:.3e} {first:.4f} {last:.4f}")
    """
)


@pytest.mark.slow
def test_sharded_training_on_8_simulated_devices_equals_one_device(tmp_path):
    script = tmp_path / "sharded.py"
    script.write_text(SHARDED_SCRIPT)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    env["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT"))
    rel, params_diff, first, last = (float(v) for v in line.split()[1:])
    assert rel < 1e-5, line  # same losses up to the order of the cross-device sums
    assert params_diff < 1e-4, line
    assert last < first, line


MULTI_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax

    process_id, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=process_id)
    assert jax.process_count() == 2 and jax.device_count() == 4, jax.devices()

    import jax.numpy as jnp, numpy as np, optax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec
    import jaxrnn as jr
    from jaxrnn import train

    cell, optimizer = jr.lstm(16), optax.adam(1e-2)

    def loss_fn(params, batch, key):
        xs, targets = batch
        _, hs = jr.unroll(cell, params, xs)
        return jnp.mean((hs[..., :1] - targets) ** 2)

    def global_batch(step):
        rng = np.random.default_rng(step)
        xs = rng.normal(size=(12, 32, 5)).astype(np.float32)  # (T, batch, features)
        return xs, np.cumsum(xs[..., :1], axis=0).astype(np.float32) / 4

    mesh = Mesh(jax.devices(), ("batch",))
    params = cell.init(jax.random.key(0), input_size=5)
    state = train.init_state(params, optimizer, jax.random.key(1))
    step = train.make_train_step(loss_fn, optimizer, mesh=mesh, batch_axis=1)
    # Every process passes the same whole batch; each device gets its part.
    result = train.fit(
        state, step, global_batch, steps=10, log_every=10, checkpoint_dir=out, progress=False
    )
    # Or each process reads only its share and builds the global array itself.
    sharding = NamedSharding(mesh, PartitionSpec(None, "batch"))
    share = tuple(x[:, 16 * process_id : 16 * (process_id + 1)] for x in global_batch(0))
    _, first = step(state, jax.make_array_from_process_local_data(sharding, share))
    if process_id == 0:
        w_h = np.asarray(result.state.params["w_h"])
        with open(f"{out}/losses.json", "w") as f:
            losses = result.losses.tolist()
            json.dump({"losses": losses, "w_h": w_h.tolist(), "first": float(first)}, f)
    """
)


@pytest.mark.slow
def test_two_processes_of_two_devices_train_like_one_device(tmp_path):
    """JAX's multi-host runtime on one machine: 2 processes x 2 CPU devices, gloo collectives."""
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = str(s.getsockname()[1])
    script = tmp_path / "multi.py"
    script.write_text(MULTI_PROCESS_SCRIPT)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    env["JAX_PLATFORMS"] = "cpu"
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), str(i), port, str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        outputs = [p.communicate(timeout=300) for p in processes]
    finally:
        for p in processes:
            p.kill()
    for p, (_, err) in zip(processes, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    got = json.loads((tmp_path / "losses.json").read_text())

    # The same training in this process, on one device, from the whole batches.
    cell, optimizer = jr.lstm(16), optax.adam(1e-2)

    def one_device_loss(params, batch, key):
        xs, targets = batch
        return jnp.mean((jr.unroll(cell, params, xs)[1][..., :1] - targets) ** 2)

    def global_batch(step):
        rng = np.random.default_rng(step)
        xs = rng.normal(size=(12, 32, 5)).astype(np.float32)
        return xs, np.cumsum(xs[..., :1], axis=0).astype(np.float32) / 4

    state = train.init_state(cell.init(jax.random.key(0), 5), optimizer, jax.random.key(1))
    expected = train.fit(
        state,
        train.make_train_step(one_device_loss, optimizer),
        global_batch,
        steps=10,
        progress=False,
    )
    np.testing.assert_allclose(got["losses"], expected.losses, rtol=1e-5)
    np.testing.assert_allclose(got["first"], expected.losses[0], rtol=1e-5)
    np.testing.assert_allclose(got["w_h"], expected.state.params["w_h"], rtol=1e-4, atol=1e-6)
    # One process wrote the checkpoint, and it holds the same params.
    saved = jr.checkpoint.load(tmp_path / "ckpt_00000010.npz")
    np.testing.assert_array_equal(saved["params"]["w_h"], np.asarray(got["w_h"], np.float32))
