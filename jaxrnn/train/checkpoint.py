"""Checkpoints: save a pytree to one file atomically, and load it back bit for bit.

`save` writes any pytree whose leaves are arrays (JAX or NumPy, every numeric
dtype including bfloat16 and float16), PRNG keys (typed keys from
`jax.random.key` and raw `uint32` keys), Python `int`/`float`/`bool`, or `None`,
to one file. `load` reads it back; given `like`, a template pytree such as
`{"params": cell.init(key, ...), "opt_state": optimizer.init(params)}`, it
checks every leaf and returns exactly `like`'s structure, optax's NamedTuple
states included. `save_step` and `latest` keep numbered checkpoints in a
directory, so a training loop resumes where it stopped.

The format (version 2) is a zip archive in NumPy's `.npz` layout, so
`numpy.load(path, allow_pickle=False)` and `unzip` can read it:

- `header.json`, first: the format name and version; the tree's structure as
  JSON (objects for dicts and named fields, lists for sequences, `null` for
  `None`, and for each leaf its index `i`); one entry per leaf with its key
  path and either its dtype (an array), its PRNG impl (a typed key) or its
  value (a Python scalar, exact as JSON writes floats); the caller's `metadata`.
- `leaf_<i>.npy` for each array or key leaf `i`, written and read with
  `allow_pickle=False`. Dtypes NumPy has no name for in a `.npy` file
  (bfloat16, the float8 family, int4) are stored as their raw bits in an
  unsigned integer of the same width; the header records the real dtype.
  A typed PRNG key is stored as `jax.random.key_data`.
- The archive comment: the SHA-256 of every member's name, length and bytes,
  in order, so any change to the header or the data is detected.

Loading never executes code: JSON and `.npy` arrays read with
`allow_pickle=False` cannot carry any, and a member that holds an object
array is rejected. Writing is atomic: the archive goes to a temporary file in
the same directory, is flushed and `fsync`ed, then `os.replace` moves it over
the destination, so a crash leaves either the old file or the new one, never
half of one. Truncation and corruption fail the zip's CRC or the checksum,
and `load` says so instead of returning wrong numbers.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import secrets
import time
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import checks

__all__ = ["latest", "load", "read_metadata", "save", "save_step"]

PyTree = Any
"""A pytree of arrays, PRNG keys, Python scalars and `None`."""

FORMAT = "jaxrnn.checkpoint"
"""The `format` field of every checkpoint header."""
VERSION = 2
"""The format version this module writes and reads."""

_HEADER = "header.json"
_DATE = (1980, 1, 1, 0, 0, 0)  # a fixed zip timestamp: the same tree gives the same bytes
_LEAVES = "arrays (JAX or NumPy), PRNG keys, Python int/float/bool or None"


def _as_path(path: Any, name: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__}")
    return Path(path)


def _bits(dtype: np.dtype) -> np.dtype | None:
    """The dtype a `.npy` member stores `dtype` in, or None if a checkpoint cannot hold it."""
    if dtype.kind in "biufc":
        return dtype.newbyteorder("=")
    if jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer):
        return np.dtype(f"uint{8 * dtype.itemsize}")  # ml_dtypes (bfloat16, float8, int4)
    return None


def _is_key(leaf: Any) -> bool:
    return jnp.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key)


def _skeleton(node: Any, path: tuple, leaves: list[tuple[str, Any]]) -> Any:
    """`node`'s structure as JSON; each leaf becomes its index in `leaves`, where
    `(key path, leaf)` is appended."""
    if node is None:
        return None
    # One level of the pytree: every child, None included, counts as a leaf here.
    level = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)[0]
    if len(level) == 1 and not level[0][0]:
        leaves.append((jax.tree_util.keystr(path), node))
        return len(leaves) - 1
    children = {key: _skeleton(child, (*path, key), leaves) for (key,), child in level}
    named = any(isinstance(k, (jax.tree_util.DictKey, jax.tree_util.GetAttrKey)) for k in children)
    if named or isinstance(node, dict) or hasattr(node, "_fields"):
        return {jax.tree_util.keystr((k,), simple=True): c for k, c in children.items()}
    return list(children.values())


def _encode(name: str, leaf: Any) -> tuple[dict[str, Any], np.ndarray | None]:
    """The header entry of one leaf, and the array stored for it (None for a Python scalar)."""
    if isinstance(leaf, jax.core.Tracer):
        raise TypeError(f"{name} is a traced value; save concrete arrays, outside jit and grad")
    if _is_key(leaf):
        return {"impl": str(jax.random.key_impl(leaf))}, np.asarray(jax.random.key_data(leaf))
    if isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
        arr = np.asarray(leaf)
        bits = _bits(arr.dtype)
        if bits is None:
            raise TypeError(f"{name} has dtype {arr.dtype}, which a checkpoint cannot hold")
        native = np.asarray(arr, arr.dtype.newbyteorder("="), order="C")
        return {"dtype": arr.dtype.name}, native.view(bits)
    if isinstance(leaf, (bool, int, float)):
        return {"value": leaf}, None
    raise TypeError(f"{name} is a {type(leaf).__name__}; leaves must be {_LEAVES}")


def _digest(members: Mapping[str, bytes]) -> bytes:
    """The SHA-256 of the archive members, as the archive comment holds it."""
    digest = hashlib.sha256()
    for name, data in members.items():
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest().encode()


def save(
    path: str | os.PathLike, tree: PyTree, *, metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write `tree` to the file `path` atomically.

    The file is a zip archive in NumPy's `.npz` layout (see the module
    docstring): a JSON header describing the tree and its dtypes, one `.npy`
    member per array, and a SHA-256 checksum of everything. It is first
    written to a temporary file next to `path`, flushed and `fsync`ed, then
    moved over `path` with `os.replace`: whatever happens, `path` holds either
    its old contents or the complete new checkpoint. If writing fails, the
    temporary file is removed and the error propagates. The same tree always
    gives the same bytes.

    Arrays are copied to the host; JAX arrays come back from `load` on the
    default device. Whether a JAX array was weakly typed is not recorded.

    Args:
      path: the file to write, any name (`.npz` is conventional). Its directory
        must exist.
      tree: a pytree whose leaves are JAX or NumPy arrays of any numeric or
        bool dtype (bfloat16, float16, float64, int4, ... included), typed PRNG
        keys (`jax.random.key`), raw `uint32` keys (`jax.random.PRNGKey`),
        Python `int`, `float` or `bool`; `None` subtrees are kept. Params
        dicts, optax states and step counters can be saved together in one
        dict.
      metadata: a JSON-serialisable mapping with str keys saved alongside
        (a config, the loss, a git commit); `read_metadata` returns it.

    Returns:
      `path` as a `pathlib.Path`.

    Raises:
      TypeError: a leaf is of an unsupported type (a string, an object array,
        a traced value) — the error names its key path — or `metadata` is not
        a JSON-serialisable mapping with str keys.
      FileNotFoundError: the directory of `path` does not exist.
      IsADirectoryError: `path` is a directory.

    Examples:
      >>> import tempfile, pathlib, jax, jax.numpy as jnp
      >>> from jaxrnn import checkpoint
      >>> w = jnp.arange(6.0).reshape(2, 3)
      >>> tree = {"w": w, "step": 3, "key": jax.random.key(0)}
      >>> path = pathlib.Path(tempfile.mkdtemp()) / "ckpt.npz"
      >>> checkpoint.save(path, tree, metadata={"loss": 0.25}).name
      'ckpt.npz'
      >>> restored = checkpoint.load(path, like=tree)
      >>> restored["step"], restored["w"].dtype, checkpoint.read_metadata(path)
      (3, dtype('float32'), {'loss': 0.25})
    """
    path = _as_path(path, "path")
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
        raise TypeError(
            f"metadata must be a mapping with str keys, got {type(metadata).__name__} {metadata!r}"
        )
    leaves: list[tuple[str, Any]] = []  # (key path, leaf), filled in by _skeleton
    tree_json = _skeleton(tree, (), leaves)
    header = {"format": FORMAT, "version": VERSION, "tree": tree_json, "leaves": []}
    members = {_HEADER: b""}  # the header comes first; it is filled in below
    for i, (name, leaf) in enumerate(leaves):
        entry, array = _encode(f"tree{name}", leaf)
        header["leaves"].append({"path": name, **entry})
        if array is not None:
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            members[f"leaf_{i}.npy"] = buffer.getvalue()
    try:
        members[_HEADER] = json.dumps({**header, "metadata": dict(metadata)}).encode()
    except (TypeError, ValueError) as e:
        raise TypeError(f"metadata must be JSON-serialisable: {e}") from e
    if path.is_dir():
        raise IsADirectoryError(f"path {str(path)!r} is a directory; give a file name")
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"cannot save {str(path)!r}: directory {str(path.parent)!r} does not exist "
            f"(create it first, or use save_step, which does)"
        )
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(temporary, "xb") as file:
            with zipfile.ZipFile(file, "w") as archive:
                for name, data in members.items():
                    info = zipfile.ZipInfo(name, _DATE)
                    info.external_attr = 0o644 << 16
                    archive.writestr(info, data)
                archive.comment = _digest(members)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # POSIX: make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        with contextlib.suppress(OSError):  # some filesystems cannot fsync a directory
            os.fsync(fd)
        os.close(fd)
    return path


def _bad(path: Path, problem: str) -> ValueError:
    return ValueError(f"checkpoint {str(path)!r} is corrupt: {problem}")


def _decode(entry: Mapping[str, Any], members: Mapping[str, bytes], i: int) -> Any:
    """The value of leaf `i` from its header entry and its member."""
    if "value" in entry:
        if not isinstance(entry["value"], (bool, int, float)):
            raise ValueError(f"value {entry['value']!r} is not a Python scalar")
        return entry["value"]
    data = np.lib.format.read_array(io.BytesIO(members[f"leaf_{i}.npy"]), allow_pickle=False)
    if "impl" in entry:
        return jax.random.wrap_key_data(data, impl=entry["impl"])
    dtype = jnp.dtype(entry["dtype"])
    if _bits(dtype) != data.dtype:
        raise ValueError(f"a {data.dtype} member cannot hold dtype {entry['dtype']!r}")
    return data.view(dtype)


def _build(node: Any, values: list[Any]) -> Any:
    """Nested dicts and lists from the header's tree structure."""
    if isinstance(node, dict):
        return {key: _build(child, values) for key, child in node.items()}
    if isinstance(node, list):
        return [_build(child, values) for child in node]
    return None if node is None else values[node]


def _read(path: Path) -> tuple[dict[str, Any], dict[str, Any], PyTree]:
    """The metadata of the verified checkpoint at `path`, the value of each leaf by key
    path (NumPy arrays of their real dtype, typed JAX keys, Python scalars), and their tree."""
    try:
        with zipfile.ZipFile(path) as archive:  # reading checks each member's CRC
            members = {name: archive.read(name) for name in archive.namelist()}
            checksum = archive.comment
        header = json.loads(members.get(_HEADER, b"{}"))
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as e:
        raise ValueError(
            f"{str(path)!r} is not a readable checkpoint: it is truncated, corrupt or not a zip "
            f"archive ({e})"
        ) from e
    found = header.get("format") if isinstance(header, dict) else None
    if found != FORMAT:
        raise ValueError(
            f"{str(path)!r} is not a jaxrnn checkpoint: it has no {_HEADER} of format "
            f"{FORMAT!r} (members {list(members)[:5]}, format {found!r}); write checkpoints "
            f"with jaxrnn.checkpoint.save"
        )
    if header.get("version") != VERSION:
        raise ValueError(
            f"checkpoint {str(path)!r} has format version {header.get('version')!r} but this "
            f"jaxrnn reads version {VERSION} (an older version needs an older jaxrnn, a later "
            f"one a newer)"
        )
    if checksum != _digest(members):
        raise _bad(path, "SHA-256 checksum mismatch; it was changed after it was written")
    leaves, where = [], "header"
    try:
        for i, entry in enumerate(header["leaves"]):
            where = f"leaf_{i} {entry.get('path')}"
            leaves.append((str(entry["path"]), _decode(entry, members, i)))
        where = "tree structure"
        tree = _build(header["tree"], [value for _, value in leaves])
        return header["metadata"], dict(leaves), tree
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as e:
        raise _bad(path, f"malformed {where}: {e!r}") from e


def _describe(leaf: Any, name: str) -> str:
    if isinstance(leaf, (jax.Array, jax.ShapeDtypeStruct, np.ndarray, np.generic)):
        kind = "a PRNG key array" if _is_key(leaf) else "an array"
        return f"{kind} of shape {tuple(leaf.shape)} and dtype {leaf.dtype.name}"
    if isinstance(leaf, (bool, int, float)):
        return f"a Python {type(leaf).__name__}"
    raise TypeError(f"{name} is a {type(leaf).__name__}; leaves must be {_LEAVES}")


def load(path: str | os.PathLike, like: PyTree | None = None) -> PyTree:
    """Read a checkpoint written by `save`, verifying it completely.

    The header's format and version, every member's CRC and the SHA-256
    checksum over the whole archive are checked before anything is returned.
    Nothing in the file can run code: the header is JSON and arrays are read
    with `allow_pickle=False`.

    With `like`, a template pytree (freshly initialised params, the state of
    `optimizer.init(params)`, `jax.eval_shape` of either, a step counter), the
    file must hold exactly `like`'s leaves, matched by key path, each with
    `like`'s kind, shape and dtype. The result is unflattened into `like`'s
    tree structure, so optax's NamedTuple states come back as the same types.
    JAX leaves (and `jax.ShapeDtypeStruct`) of `like` become JAX arrays on the
    default device, NumPy leaves NumPy arrays, Python scalars Python scalars.

    Without `like`, the result is built from nested dicts and lists: dicts stay
    dicts (with str keys), tuples and lists become lists, NamedTuples and other
    pytree nodes with named fields become dicts keyed by field name, `None`
    stays `None`. Arrays come back as NumPy arrays of their saved dtype
    (float64 stays float64 without `jax_enable_x64`), typed PRNG keys as JAX
    key arrays and Python scalars as themselves.

    Args:
      path: a file written by `save`.
      like: a pytree with the structure, shapes and dtypes to restore into,
        or None.

    Returns:
      The saved tree: `like`'s structure when `like` is given, nested dicts and
      lists otherwise.

    Raises:
      ValueError: the file is not a checkpoint, is truncated or corrupt (the
        checksum or the zip's CRC fails, the header is malformed, it holds an
        object array), has another format version, or, with `like`, has
        missing or extra leaves or a leaf of another kind, shape or dtype; the
        message names the key path and both sides.
      TypeError: a leaf of `like` is not an array, key or Python scalar.
      FileNotFoundError: `path` does not exist.

    Examples:
      >>> import tempfile, pathlib, jax, optax
      >>> import jaxrnn as jr
      >>> from jaxrnn import checkpoint
      >>> params = jr.lstm(4).init(jax.random.key(0), input_size=3)
      >>> opt_state = optax.adam(1e-3).init(params)
      >>> path = pathlib.Path(tempfile.mkdtemp()) / "c.npz"
      >>> path = checkpoint.save(path, (params, opt_state))
      >>> params2, opt_state2 = checkpoint.load(path, like=(params, opt_state))
      >>> type(opt_state2[0]).__name__, bool((params2["w_h"] == params["w_h"]).all())
      ('ScaleByAdamState', True)
      >>> # no template: lists, dicts and NumPy arrays
      >>> raw_params, raw_opt_state = checkpoint.load(path)
      >>> adam_state = raw_opt_state[0]
      >>> sorted(adam_state), type(raw_params.get("w_x")).__name__
      (['count', 'mu', 'nu'], 'ndarray')
    """
    path = _as_path(path, "path")
    _, saved, tree = _read(path)
    if like is None:
        return tree
    names = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(like)[0]]
    missing = [name for name in names if name not in saved]
    extra = sorted(set(saved).difference(names))
    if missing or extra:
        raise ValueError(
            f"checkpoint {str(path)!r} does not match like: leaves in like but missing from the "
            f"file: {', '.join(missing) or 'none'}; leaves in the file but not in like: "
            f"{', '.join(extra) or 'none'}"
        )

    def restore(keys: tuple, leaf: Any) -> Any:
        name = jax.tree_util.keystr(keys)
        value = saved[name]
        want, got = _describe(leaf, f"like{name}"), _describe(value, f"file{name}")
        if want != got:
            raise ValueError(
                f"checkpoint {str(path)!r} does not match like at leaf {name or '<root>'}: "
                f"like has {want} but the file has {got}"
            )
        if isinstance(leaf, np.generic):
            return value[()]
        return jnp.asarray(value) if isinstance(leaf, (jax.Array, jax.ShapeDtypeStruct)) else value

    return jax.tree_util.tree_map_with_path(restore, like)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The `metadata` saved with a checkpoint, after verifying the whole file.

    Args:
      path: a file written by `save`.

    Returns:
      The metadata mapping as JSON gives it back (tuples become lists); an
      empty dict when none was saved.

    Raises:
      ValueError: as `load`, when the file is not a valid checkpoint.
      FileNotFoundError: `path` does not exist.

    Examples:
      >>> import tempfile, pathlib, numpy as np
      >>> from jaxrnn import checkpoint
      >>> path = pathlib.Path(tempfile.mkdtemp()) / "c.npz"
      >>> metadata = {"lr": 1e-3, "sizes": (4, 8)}
      >>> _ = checkpoint.save(path, {"w": np.zeros(3)}, metadata=metadata)
      >>> checkpoint.read_metadata(path)
      {'lr': 0.001, 'sizes': [4, 8]}
    """
    return _read(_as_path(path, "path"))[0]


# -- numbered checkpoints in a directory --------------------------------------------------------


def _check_prefix(prefix: Any) -> str:
    if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", prefix):
        raise ValueError(
            f"prefix must be a non-empty file-name stem of letters, digits, '_', '.' or '-' "
            f"(e.g. 'ckpt'), got {prefix!r}"
        )
    return prefix


def _numbered(directory: Path, prefix: str) -> list[tuple[int, Path]]:
    """`(step, path)` of every `{prefix}_{step}.npz` in `directory`, lowest step first."""
    pattern = re.compile(rf"{re.escape(prefix)}_(\d+)\.npz")
    matches = [(pattern.fullmatch(p.name), p) for p in directory.iterdir()]
    return sorted((int(m.group(1)), p) for m, p in matches if m and p.is_file())


def save_step(
    directory: str | os.PathLike,
    step: int,
    tree: PyTree,
    *,
    keep: int | None = None,
    prefix: str = "ckpt",
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save `tree` as `directory/{prefix}_{step:08d}.npz`, then prune old checkpoints.

    The directory is created if needed and the file is written atomically by
    `save`. With `keep`, once the new file is safely in place, the
    checkpoints of this prefix beyond the `keep` newest are deleted, lowest
    step first; the file just written is never deleted, so the newest valid
    checkpoint always survives, and a failed save deletes nothing. Temporary files
    left by writes of this prefix that were killed midway (a preempted job) are
    removed after a successful save, so they never fill the disk; files of other
    prefixes and other names are left alone.

    Args:
      directory: the folder that holds the checkpoints.
      step: the training step, a non-negative int; it orders the files.
      tree: the pytree to save (see `save`).
      keep: how many checkpoints of this prefix to keep, a positive int, or
        None to keep all.
      prefix: the file-name stem, e.g. `"ckpt"` or `"best"`.
      metadata: JSON-serialisable mapping saved alongside (see `save`).

    Returns:
      The path of the file written.

    Raises:
      TypeError: `step` or `keep` is not an int, or as `save`.
      ValueError: `step` is negative, `keep` is less than 1, or `prefix` is not
        a plain file-name stem.

    Examples:
      >>> import tempfile, numpy as np
      >>> from jaxrnn import checkpoint
      >>> directory = tempfile.mkdtemp()
      >>> for step in (10, 20, 30):
      ...     tree = {"w": np.full(2, step)}
      ...     path = checkpoint.save_step(directory, step, tree, keep=2)
      >>> sorted(p.name for p in path.parent.iterdir())
      ['ckpt_00000020.npz', 'ckpt_00000030.npz']
    """
    directory = _as_path(directory, "directory")
    step = checks.non_negative_int(step, "step")
    if keep is not None:
        keep = checks.positive_int(keep, "keep")
    prefix = _check_prefix(prefix)
    directory.mkdir(parents=True, exist_ok=True)
    path = save(directory / f"{prefix}_{int(step):08d}.npz", tree, metadata=metadata)
    # Another writer's live temporary file is younger than a minute; a killed one stays.
    for leftover in directory.glob(f".{prefix}_*.npz.*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - leftover.stat().st_mtime > 60:
                leftover.unlink()
    if keep is not None:
        others = [p for _, p in _numbered(directory, prefix) if p != path]
        for old in others[: max(0, len(others) + 1 - keep)]:
            old.unlink(missing_ok=True)
    return path


def latest(directory: str | os.PathLike, prefix: str = "ckpt") -> Path | None:
    """The newest checkpoint `{prefix}_{step}.npz` in `directory` that loads, or None.

    Files are ordered by the step in their name. Each candidate, newest first,
    is verified completely (as `load` would); a damaged one is skipped with a
    `RuntimeWarning` naming it, so a resume falls back to the previous good
    checkpoint. A missing directory has no checkpoints.

    Args:
      directory: the folder `save_step` writes to.
      prefix: the file-name stem given to `save_step`.

    Returns:
      The path of the newest valid checkpoint, or None when there is none.

    Raises:
      ValueError: `prefix` is not a plain file-name stem.

    Examples:
      >>> import tempfile, numpy as np
      >>> from jaxrnn import checkpoint
      >>> directory = tempfile.mkdtemp()
      >>> checkpoint.latest(directory) is None
      True
      >>> for step in (1, 2):
      ...     _ = checkpoint.save_step(directory, step, {"w": np.zeros(2)})
      >>> checkpoint.latest(directory).name
      'ckpt_00000002.npz'
    """
    directory = _as_path(directory, "directory")
    prefix = _check_prefix(prefix)
    for _, path in reversed(_numbered(directory, prefix) if directory.is_dir() else []):
        try:
            _read(path)
            return path
        except (ValueError, OSError) as e:
            warnings.warn(f"skipping checkpoint {str(path)!r}: {e}", RuntimeWarning, stacklevel=2)
    return None
