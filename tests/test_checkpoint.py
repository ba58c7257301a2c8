"""Checkpoints: bit-identical round trips, resuming training, atomic writes, damage detection.

Every comparison is bit for bit (the raw bytes of each array, `float.hex` of
each Python float), so NaN payloads, signed zeros and subnormals count.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxrnn as jr
from jaxrnn import checkpoint

# -- helpers --------------------------------------------------------------------------------------


def leaf_bits(leaf):
    """What must survive a round trip: the leaf's kind, dtype, shape and exact bits."""
    if isinstance(leaf, float):
        return ("float", leaf.hex())
    if isinstance(leaf, (bool, int)):
        return (type(leaf).__name__, leaf)
    if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        data = np.asarray(jax.random.key_data(leaf))
        return ("key", str(leaf.dtype), leaf.shape, data.tobytes())
    arr = np.asarray(leaf)
    return (type(leaf).__name__, str(arr.dtype), arr.shape, arr.tobytes())


def assert_bit_identical(got, want):
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for (path, a), b in zip(
        jax.tree_util.tree_flatten_with_path(got)[0], jax.tree_util.tree_leaves(want), strict=True
    ):
        assert type(a) is type(b) or (isinstance(a, jax.Array) and isinstance(b, jax.Array)), path
        assert leaf_bits(a) == leaf_bits(b), f"leaf {jax.tree_util.keystr(path)} differs"


def random_bits(shape, dtype, seed=0):
    """An array of `dtype` with uniformly random bits: NaNs, infinities, subnormals, -0.0."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return np.random.default_rng(seed).integers(0, 2, shape).astype(bool)
    raw = np.random.default_rng(seed).integers(0, 256, (*shape, dtype.itemsize), dtype=np.uint8)
    return raw.view(dtype).reshape(shape)


def signature(members):
    """The checksum `save` puts in the archive comment: the SHA-256 of every member's
    name, length and bytes, in order."""
    digest = hashlib.sha256()
    for name, data in members.items():
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest().encode()


def write_archive(path, members, comment):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.comment = comment


def rewrite(path, edit, resign=False):
    """Rewrite the archive at `path` with `edit(members)` applied, with valid zip CRCs.

    The checksum stays as it was, so only it can tell; with `resign` it is
    recomputed, as a crafted file would be, to reach the checks behind it.
    """
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
        comment = archive.comment
    edit(members)
    write_archive(path, members, signature(members) if resign else comment)


def edit_header(change):
    def edit(members):
        header = json.loads(members["header.json"])
        change(header)
        members["header.json"] = json.dumps(header).encode()

    return edit


def path_regex(path) -> str:
    return re.escape(repr(str(path)))


@pytest.fixture
def params():
    return jr.lstm(8).init(jax.random.key(0), input_size=3)


# -- round trips ----------------------------------------------------------------------------------

DTYPES = ["float32", "float16", "bfloat16", "int32", "int8", "uint8", "bool", "complex64"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_is_bit_identical(tmp_path, dtype):
    arrays = {
        "jax": jnp.asarray(random_bits((5, 7), jnp.dtype(dtype), seed=1)),
        "numpy": random_bits((3,), jnp.dtype(dtype), seed=2),
        "scalar": jnp.asarray(random_bits((), jnp.dtype(dtype), seed=3)),
        "empty": jnp.zeros((0, 4), dtype),
    }
    path = checkpoint.save(tmp_path / "c.npz", arrays)
    assert_bit_identical(checkpoint.load(path, like=arrays), arrays)
    # Without a template every array comes back as NumPy, with the same dtype and bits.
    raw = checkpoint.load(path)
    assert_bit_identical(raw, jax.tree_util.tree_map(np.asarray, arrays))


def test_float64_and_int64_round_trip(tmp_path, x64):
    tree = {
        "f64": jnp.asarray(random_bits((4, 3), np.float64)),
        "i64": jnp.asarray(random_bits((6,), np.int64)),
    }
    assert tree["f64"].dtype == jnp.float64
    path = checkpoint.save(tmp_path / "c.npz", tree)
    assert_bit_identical(checkpoint.load(path, like=tree), tree)


def test_float64_stays_float64_without_x64_and_a_float32_template_is_refused(tmp_path):
    values = random_bits((3,), np.float64)
    path = checkpoint.save(tmp_path / "c.npz", {"w": values})
    assert_bit_identical(checkpoint.load(path), {"w": values})
    like = {"w": jnp.zeros(3)}  # float32: x64 is off
    with pytest.raises(
        ValueError,
        match=r"\['w'\].*like has an array of shape \(3,\) and dtype "
        r"float32 but the file has an array of shape \(3,\) and dtype float64",
    ):
        checkpoint.load(path, like=like)


def test_prng_keys_round_trip_and_draw_the_same_numbers(tmp_path):
    tree = {
        "typed": jax.random.key(42),
        "rbg": jax.random.key(7, impl="rbg"),
        "batch_of_keys": jax.random.split(jax.random.key(3), 4),
        "raw": jax.random.PRNGKey(5),
    }
    path = checkpoint.save(tmp_path / "c.npz", tree)
    without_like = {**tree, "raw": np.asarray(tree["raw"])}  # raw keys are plain uint32 arrays
    for restored, want in [
        (checkpoint.load(path, like=tree), tree),
        (checkpoint.load(path), without_like),
    ]:
        assert_bit_identical(restored, want)
        single = {**tree, "batch_of_keys": tree["batch_of_keys"][2]}
        restored = {**restored, "batch_of_keys": restored["batch_of_keys"][2]}
        for name, key in single.items():
            np.testing.assert_array_equal(
                jax.random.normal(restored[name], (3,)), jax.random.normal(key, (3,))
            )
    assert str(checkpoint.load(path)["rbg"].dtype) == "key<rbg>"
    assert checkpoint.load(path)["raw"].dtype == np.uint32


def test_optax_state_and_nested_params_round_trip(tmp_path, params):
    optimizer = optax.adam(1e-3)
    nested = {"encoder": params, "head": {"w": jnp.ones((8, 2)), "b": jnp.zeros(2)}}
    state = {"params": nested, "opt_state": optimizer.init(nested), "step": 12}
    path = checkpoint.save(tmp_path / "c.npz", state)

    restored = checkpoint.load(path, like=state)
    assert_bit_identical(restored, state)
    assert type(restored["opt_state"][0]) is optax.ScaleByAdamState
    assert type(restored["opt_state"][1]) is optax.EmptyState

    # Without a template: NamedTuples become dicts of their fields, tuples become lists.
    raw = checkpoint.load(path)
    assert isinstance(raw["opt_state"], list) and raw["opt_state"][1] == {}
    assert sorted(raw["opt_state"][0]) == ["count", "mu", "nu"]
    np.testing.assert_array_equal(raw["opt_state"][0]["mu"]["head"]["w"], np.zeros((8, 2)))
    np.testing.assert_array_equal(raw["params"]["encoder"]["w_h"], params["w_h"])


def test_like_may_be_abstract_shapes(tmp_path, params):
    optimizer = optax.adam(1e-3)
    state = {"params": params, "opt_state": optimizer.init(params)}
    path = checkpoint.save(tmp_path / "c.npz", state)
    like = jax.eval_shape(lambda: state)
    restored = checkpoint.load(path, like=like)
    assert_bit_identical(restored, state)
    assert isinstance(restored["params"]["w_x"], jax.Array)


def test_python_scalars_none_and_empty_containers_round_trip(tmp_path):
    tree = {
        "step": 2**70,
        "flag": False,
        "floats": [0.1, -0.0, float("inf"), float.fromhex("0x1.fffffffffffffp+1023"), 5e-324],
        "nothing": None,
        "empty": {"list": [], "dict": {}, "tuple": ()},
        "numpy_scalar": np.float32(2.5),
    }
    path = checkpoint.save(tmp_path / "c.npz", tree)
    assert_bit_identical(checkpoint.load(path, like=tree), tree)
    raw = checkpoint.load(path)
    assert raw["nothing"] is None and raw["empty"] == {"list": [], "dict": {}, "tuple": []}
    assert [x.hex() for x in raw["floats"]] == [x.hex() for x in tree["floats"]]
    assert raw["step"] == 2**70 and raw["flag"] is False
    nan = checkpoint.load(checkpoint.save(tmp_path / "nan.npz", float("nan")))
    assert isinstance(nan, float) and np.isnan(nan)


def test_metadata_round_trips_and_is_checked(tmp_path):
    path = checkpoint.save(tmp_path / "c.npz", {"w": np.ones(2)}, metadata={"lr": 0.1, "n": [1]})
    assert checkpoint.read_metadata(path) == {"lr": 0.1, "n": [1]}
    assert checkpoint.read_metadata(checkpoint.save(tmp_path / "d.npz", {})) == {}
    with pytest.raises(TypeError, match="metadata must be JSON-serialisable"):
        checkpoint.save(tmp_path / "e.npz", {}, metadata={"array": np.ones(2)})
    with pytest.raises(TypeError, match="metadata must be a mapping with str keys"):
        checkpoint.save(tmp_path / "e.npz", {}, metadata={1: "one"})
    assert not (tmp_path / "e.npz").exists()


def test_the_same_tree_gives_the_same_bytes(tmp_path, params):
    a = checkpoint.save(tmp_path / "a.npz", params).read_bytes()
    b = checkpoint.save(tmp_path / "b.npz", params).read_bytes()
    assert a == b
    assert a != checkpoint.save(tmp_path / "c.npz", {**params, "b": params["b"] + 1}).read_bytes()


def test_numpy_can_read_the_file_without_pickle(tmp_path, params):
    path = checkpoint.save(tmp_path / "c.npz", {"params": params})
    with np.load(path, allow_pickle=False) as npz:
        header = json.loads(npz["header.json"])
        i = next(i for i, e in enumerate(header["leaves"]) if e["path"] == "['params']['w_h']")
        np.testing.assert_array_equal(npz[f"leaf_{i}"], params["w_h"])


# -- resuming training ----------------------------------------------------------------------------


def make_training():
    cell = jr.lstm(8)
    optimizer = optax.adam(1e-2)

    def init(key):
        k_cell, k_head, k_data = jax.random.split(key, 3)
        params = {
            "cell": cell.init(k_cell, input_size=3),
            "head": {"w": 0.3 * jax.random.normal(k_head, (8,)), "b": jnp.zeros(())},
        }
        return {"params": params, "opt_state": optimizer.init(params), "key": k_data, "step": 0}

    @jax.jit
    def update(params, opt_state, key):
        key, k_x = jax.random.split(key)
        xs = jax.random.normal(k_x, (6, 4, 3))  # (T, batch, features)
        target = jnp.sum(xs, axis=(0, 2))

        def loss(p):
            _, hs = jr.unroll(cell, p["cell"], xs)
            return jnp.mean((hs[-1] @ p["head"]["w"] + p["head"]["b"] - target) ** 2)

        value, grads = jax.value_and_grad(loss)(params)
        with jax.numpy_dtype_promotion("standard"):  # optax's Adam mixes dtypes
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
        return params, opt_state, key, value

    def train(state, steps):
        params, opt_state, key = state["params"], state["opt_state"], state["key"]
        losses = []
        for _ in range(steps):
            params, opt_state, key, value = update(params, opt_state, key)
            losses.append(float(value))
        state = {
            "params": params,
            "opt_state": opt_state,
            "key": key,
            "step": state["step"] + steps,
        }
        return state, losses

    return init, train


def test_resume_equals_uninterrupted_training(tmp_path):
    init, train = make_training()
    n = 4
    start = init(jax.random.key(0))
    uninterrupted, losses = train(start, 2 * n)
    assert np.all(np.isfinite(losses))
    for name in ("w_x", "w_h", "b"):  # every step moves the params
        assert leaf_bits(uninterrupted["params"]["cell"][name]) != leaf_bits(
            start["params"]["cell"][name]
        )

    first_half, _ = train(init(jax.random.key(0)), n)
    path = checkpoint.save_step(tmp_path, n, first_half)

    fresh = init(jax.random.key(123))  # what a new process would build, before loading
    assert leaf_bits(fresh["params"]["cell"]["w_x"]) != leaf_bits(
        first_half["params"]["cell"]["w_x"]
    )
    resumed = checkpoint.load(checkpoint.latest(tmp_path), like=fresh)
    assert checkpoint.latest(tmp_path) == path
    assert_bit_identical(resumed, first_half)
    resumed, _ = train(resumed, n)

    assert resumed["step"] == uninterrupted["step"] == 2 * n
    assert_bit_identical(resumed, uninterrupted)


# -- atomic writes --------------------------------------------------------------------------------


@pytest.mark.parametrize("failing", ["replace", "fsync", "writestr"])
def test_a_failed_write_leaves_the_previous_checkpoint_and_no_temporary_file(
    tmp_path, monkeypatch, params, failing
):
    path = checkpoint.save(tmp_path / "ckpt.npz", params)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        temporary = list(tmp_path.glob(".ckpt.npz.*.tmp"))
        assert len(temporary) == 1, "the temporary file should exist by now"
        raise OSError("simulated crash")

    monkeypatch.setattr(zipfile.ZipFile if failing == "writestr" else os, failing, crash)
    newer = {name: value + 1 for name, value in params.items()}
    with pytest.raises(OSError, match="simulated crash"):
        checkpoint.save(path, newer)
    monkeypatch.undo()

    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.npz"]
    assert path.read_bytes() == before
    assert_bit_identical(checkpoint.load(path, like=params), params)


def test_an_unsavable_leaf_writes_nothing(tmp_path):
    with pytest.raises(TypeError, match=r"tree\['name'\] is a str"):
        checkpoint.save(tmp_path / "c.npz", {"w": np.ones(2), "name": "lstm"})
    with pytest.raises(TypeError, match=r"tree\['objects'\] has dtype object"):
        checkpoint.save(tmp_path / "c.npz", {"objects": np.array([None, 1], dtype=object)})
    with pytest.raises(TypeError, match=r"tree\['w'\] is a traced value"):
        jax.jit(lambda w: checkpoint.save(tmp_path / "c.npz", {"w": w}) and w)(jnp.ones(2))
    assert list(tmp_path.iterdir()) == []


def test_save_checks_its_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"directory .*missing.* does not exist"):
        checkpoint.save(tmp_path / "missing" / "c.npz", {})
    with pytest.raises(IsADirectoryError, match="is a directory"):
        checkpoint.save(tmp_path, {})
    with pytest.raises(TypeError, match=r"path must be a str or os\.PathLike, got int"):
        checkpoint.save(3, {})


# -- damaged and foreign files --------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path, params):
    return checkpoint.save(tmp_path / "c.npz", {"params": params, "step": 3}), params


@pytest.mark.parametrize("keep", [0.5, 0.99, "one byte short", 100])
def test_a_truncated_file_is_detected(saved, keep):
    path, _ = saved
    data = path.read_bytes()
    size = {"one byte short": len(data) - 1, 100: 100}.get(keep) or int(len(data) * keep)
    path.write_bytes(data[:size])
    with pytest.raises(ValueError, match=path_regex(path) + ".*(truncated|corrupt)"):
        checkpoint.load(path)


@pytest.mark.parametrize("where", ["array data", "header"])
def test_a_flipped_byte_is_detected(saved, where):
    path, params = saved
    data = bytearray(path.read_bytes())
    if where == "array data":
        offset = data.find(np.asarray(params["w_h"]).tobytes()) + 17
    else:
        offset = data.find(b'"format": "jaxrnn') + len('"format": "')
    assert offset > 20
    data[offset] ^= 0x04
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=path_regex(path) + " is not a readable .*corrupt.*CRC"):
        checkpoint.load(path)


def test_a_consistent_edit_fails_the_checksum(saved):
    path, params = saved

    def scale_w_h(members):
        header = json.loads(members["header.json"])
        i = next(i for i, e in enumerate(header["leaves"]) if e["path"] == "['params']['w_h']")
        members[f"leaf_{i}.npy"] = members[f"leaf_{i}.npy"].replace(
            np.asarray(params["w_h"]).tobytes(), np.asarray(params["w_h"] * 2).tobytes()
        )

    rewrite(path, scale_w_h)  # valid zip CRCs, valid .npy: only the checksum can tell
    with pytest.raises(ValueError, match="SHA-256 checksum mismatch"):
        checkpoint.load(path)
    with pytest.raises(ValueError, match="SHA-256 checksum mismatch"):
        checkpoint.read_metadata(path)


def test_an_edited_header_fails_the_checksum(saved):
    path, _ = saved
    rewrite(path, edit_header(lambda h: h["leaves"][-1].update(value=4)))  # the step: 3 -> 4
    with pytest.raises(ValueError, match="SHA-256 checksum mismatch"):
        checkpoint.load(path)


@pytest.mark.parametrize(
    "version, message",
    [
        (3, r"format version 3 but this jaxrnn reads version 2 .*a later one a newer"),
        ("2", r"format version '2' but this jaxrnn reads version 2"),
        (1, r"format version 1 but this jaxrnn reads version 2 \(an older version needs an old"),
        (None, r"format version None"),
    ],
)
def test_an_unknown_format_version_is_refused(saved, version, message):
    path, _ = saved
    rewrite(path, edit_header(lambda h: h.update(version=version)))
    with pytest.raises(ValueError, match=message):
        checkpoint.load(path)


def test_files_that_are_not_checkpoints_are_refused(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"is not a readable checkpoint: .*not a zip archive"):
        checkpoint.load(text)
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.ones(3))
    with pytest.raises(
        ValueError, match=r"not a jaxrnn checkpoint: it has no header.json .*'w.npy'"
    ):
        checkpoint.load(plain)
    other = tmp_path / "other.npz"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("header.json", json.dumps({"format": "something.else"}))
    with pytest.raises(ValueError, match=r"not a jaxrnn checkpoint: .*format 'something.else'"):
        checkpoint.load(other)
    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path / "absent.npz")


def test_rewriting_without_an_edit_keeps_the_file_valid(saved):
    # Guards the tests around it: only their edits make the files fail.
    path, params = saved
    rewrite(path, lambda members: None)
    want = {"params": jax.tree_util.tree_map(np.asarray, params), "step": 3}
    assert_bit_identical(checkpoint.load(path), want)


def test_stray_or_missing_members_are_detected(saved):
    path, _ = saved
    rewrite(path, lambda members: members.update({"extra.npy": b"x"}))
    with pytest.raises(ValueError, match="is corrupt: SHA-256 checksum mismatch"):
        checkpoint.load(path)
    rewrite(path, lambda members: members.pop("leaf_0.npy") and members.pop("extra.npy"))
    with pytest.raises(ValueError, match="is corrupt: SHA-256 checksum mismatch"):
        checkpoint.load(path)
    rewrite(path, lambda members: None, resign=True)  # crafted: a valid checksum, no leaf_0
    with pytest.raises(ValueError, match=r"is corrupt: malformed leaf_0 .*'leaf_0.npy'"):
        checkpoint.load(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda h: h["leaves"][-1].update(value="3"),
            r"malformed leaf_\d+ \['step'\].*not a Python scalar",
        ),
        (
            lambda h: h["leaves"][0].update(dtype="int64"),
            r"malformed leaf_0 .*cannot hold dtype 'int64'",
        ),
        (lambda h: h["leaves"][0].pop("path"), r"malformed leaf_0 None: KeyError"),
        (lambda h: h.update(tree={"w": 99}), r"malformed tree structure: IndexError"),
        (lambda h: h.update(leaves=3), r"malformed header: TypeError"),
    ],
)
def test_a_malformed_header_with_a_valid_checksum_is_refused(saved, change, message):
    path, params = saved
    rewrite(path, edit_header(change), resign=True)
    for like in (None, {"params": params, "step": 0}):
        with pytest.raises(ValueError, match=path_regex(path) + " is corrupt: " + message):
            checkpoint.load(path, like=like)


# -- loading never unpickles ----------------------------------------------------------------------

UNPICKLED = []


def _record_unpickling():
    UNPICKLED.append(True)
    return "payload"


class Canary:
    """An object whose unpickling calls `_record_unpickling`: proof that pickle ran."""

    def __reduce__(self):
        return (_record_unpickling, ())


def npy_bytes(array, allow_pickle=False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def test_the_canary_fires_when_pickle_is_allowed(tmp_path):
    # Guards the test below: it would notice if unpickling happened.
    UNPICKLED.clear()
    np.savez(tmp_path / "evil.npz", x=np.array([Canary()], dtype=object))
    with np.load(tmp_path / "evil.npz", allow_pickle=True) as npz:
        assert npz["x"][0] == "payload"
    assert UNPICKLED == [True]
    UNPICKLED.clear()


def test_an_object_array_is_rejected_without_unpickling(tmp_path):
    UNPICKLED.clear()
    crafted = tmp_path / "crafted.npz"
    header = {
        "format": "jaxrnn.checkpoint",
        "version": 2,
        "tree": {"x": 0},
        "leaves": [{"path": "['x']", "dtype": "float32"}],
        "metadata": {},
    }
    members = {
        "header.json": json.dumps(header).encode(),
        "leaf_0.npy": npy_bytes(np.array([Canary()]), allow_pickle=True),
    }
    # A wrong checksum is refused before any array is read; a valid one reaches the arrays.
    write_archive(crafted, members, b"0" * 64)
    with pytest.raises(ValueError, match="SHA-256 checksum mismatch"):
        checkpoint.load(crafted)
    write_archive(crafted, members, signature(members))
    with pytest.raises(ValueError, match=r"leaf_0 \['x'\]: .*allow_pickle=False"):
        checkpoint.load(crafted)
    with pytest.raises(ValueError, match=r"leaf_0 \['x'\]"):
        checkpoint.load(crafted, like={"x": np.zeros(1, np.float32)})

    header["leaves"][0]["dtype"] = "object"
    members = {
        "header.json": json.dumps(header).encode(),
        "leaf_0.npy": npy_bytes(np.ones(1, np.float32)),
    }
    write_archive(crafted, members, signature(members))
    with pytest.raises(ValueError, match=r"is corrupt: malformed .*cannot hold dtype 'object'"):
        checkpoint.load(crafted)
    assert UNPICKLED == []


# -- loading into a template: mismatches ----------------------------------------------------------


def test_missing_and_extra_leaves_are_named(saved):
    path, params = saved
    like = {"params": {**params, "b_hn": jnp.zeros(8)}, "step": 0}
    with pytest.raises(
        ValueError,
        match=r"in like but missing from the file: \['params'\]\['b_hn'\]; "
        r"leaves in the file but not in like: none",
    ):
        checkpoint.load(path, like=like)
    like = {"params": {k: v for k, v in params.items() if k != "w_x"}, "step": 0}
    with pytest.raises(
        ValueError,
        match=r"missing from the file: none; leaves in the file but not in like: "
        r"\['params'\]\['w_x'\]",
    ):
        checkpoint.load(path, like=like)


def test_a_wrong_shape_is_named(saved):
    path, params = saved
    like = {"params": {**params, "w_x": jnp.zeros((7, 32))}, "step": 0}
    with pytest.raises(
        ValueError,
        match=r"at leaf \['params'\]\['w_x'\]: like has an array of shape \(7, 32\) and dtype "
        r"float32 but the file has an array of shape \(3, 32\) and dtype float32",
    ):
        checkpoint.load(path, like=like)


def test_a_wrong_dtype_or_kind_is_named(saved):
    path, params = saved
    half = {"params": {**params, "b": params["b"].astype(jnp.bfloat16)}, "step": 0}
    with pytest.raises(ValueError, match=r"\['params'\]\['b'\]: .*dtype bfloat16 .*dtype float32"):
        checkpoint.load(path, like=half)
    with pytest.raises(
        ValueError,
        match=r"\['step'\]: like has a Python float but the file has "
        r"a Python int",
    ):
        checkpoint.load(path, like={"params": params, "step": 0.0})
    with pytest.raises(
        ValueError, match=r"\['step'\]: like has an array of shape \(\) .*Python int"
    ):
        checkpoint.load(path, like={"params": params, "step": jnp.zeros((), jnp.int32)})
    with pytest.raises(TypeError, match=r"like\['step'\] is a str"):
        checkpoint.load(path, like={"params": params, "step": "3"})


def test_a_raw_key_does_not_load_into_a_typed_key(tmp_path):
    path = checkpoint.save(tmp_path / "k.npz", {"key": jax.random.PRNGKey(0)})
    with pytest.raises(
        ValueError,
        match=r"\['key'\]: like has a PRNG key array of shape \(\) and dtype key<fry> but the "
        r"file has an array of shape \(2,\) and dtype uint32",
    ):
        checkpoint.load(path, like={"key": jax.random.key(0)})


# -- numbered checkpoints -------------------------------------------------------------------------


def test_save_step_removes_leftovers_of_killed_writes(tmp_path):
    directory = tmp_path / "run"
    directory.mkdir()
    stale = directory / ".ckpt_00000010.npz.0123456789ab.tmp"  # a write killed long ago
    fresh = directory / ".ckpt_00000012.npz.ba9876543210.tmp"  # maybe still being written
    other = directory / ".best_00000010.npz.0123456789ab.tmp"  # another prefix's
    for leftover in (stale, fresh, other):
        leftover.write_bytes(b"\0" * 1000)
    os.utime(stale, (0, 0))
    os.utime(other, (0, 0))
    checkpoint.save_step(directory, 20, {"w": np.zeros(2)})
    assert not stale.exists() and fresh.exists() and other.exists()
    # A killed write while saving: the next save cleans it up.
    killed = directory / ".ckpt_00000030.npz.deadbeef0000.tmp"
    killed.write_bytes(b"PK")
    os.utime(killed, (0, 0))
    checkpoint.save_step(directory, 40, {"w": np.zeros(2)})
    assert not killed.exists()


def test_save_step_keeps_the_newest_and_latest_finds_them(tmp_path):
    directory = tmp_path / "run"
    assert checkpoint.latest(directory) is None
    for step in (5, 10, 15, 20):
        checkpoint.save_step(directory, step, {"w": np.full(2, step)}, keep=2)
    checkpoint.save_step(directory, 1, {"w": np.zeros(2)}, prefix="best")
    (directory / "notes.txt").write_text("kept")
    names = sorted(p.name for p in directory.iterdir())
    assert names == ["best_00000001.npz", "ckpt_00000015.npz", "ckpt_00000020.npz", "notes.txt"]
    assert checkpoint.latest(directory) == directory / "ckpt_00000020.npz"
    assert checkpoint.latest(directory, prefix="best") == directory / "best_00000001.npz"
    np.testing.assert_array_equal(checkpoint.load(checkpoint.latest(directory))["w"], [20, 20])

    # The file just written survives pruning even when its step is not the highest.
    path = checkpoint.save_step(directory, 3, {"w": np.zeros(2)}, keep=1)
    assert path.exists()
    assert sorted(p.name for p in directory.glob("ckpt_*")) == ["ckpt_00000003.npz"]


def test_latest_skips_a_damaged_newest_checkpoint(tmp_path):
    checkpoint.save_step(tmp_path, 1, {"w": np.ones(2)})
    newest = checkpoint.save_step(tmp_path, 2, {"w": np.ones(2)})
    newest.write_bytes(newest.read_bytes()[:-10])
    with pytest.warns(RuntimeWarning, match=r"skipping checkpoint .*ckpt_00000002\.npz"):
        assert checkpoint.latest(tmp_path) == tmp_path / "ckpt_00000001.npz"


def test_a_failed_save_step_prunes_nothing(tmp_path, monkeypatch):
    first = checkpoint.save_step(tmp_path, 1, {"w": np.ones(2)}, keep=1)

    def crash(*args, **kwargs):
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        checkpoint.save_step(tmp_path, 2, {"w": np.ones(2)}, keep=1)
    monkeypatch.undo()
    assert sorted(tmp_path.iterdir()) == [first]
    assert checkpoint.latest(tmp_path) == first


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"step": -1}, ValueError, "step must be a non-negative int, got -1"),
        ({"step": 1.0}, TypeError, "step must be a non-negative int, got float"),
        ({"keep": 0}, ValueError, "keep must be a positive int, got 0"),
        ({"keep": 2.0}, TypeError, "keep must be a positive int, got float"),
        ({"prefix": "a/b"}, ValueError, "prefix must be a non-empty file-name stem"),
        ({"prefix": ""}, ValueError, "prefix must be a non-empty file-name stem"),
    ],
)
def test_save_step_checks_its_arguments(tmp_path, kwargs, error, message):
    arguments = {"step": 1, **kwargs}
    step = arguments.pop("step")
    with pytest.raises(error, match=message):
        checkpoint.save_step(tmp_path, step, {}, **arguments)
    assert list(tmp_path.iterdir()) == []
