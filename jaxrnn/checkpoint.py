"""Checkpoints: save a pytree to one file atomically, and load it back bit for bit.

`save` writes any pytree whose leaves are arrays (JAX or NumPy, every numeric
dtype including bfloat16 and float16), PRNG keys (typed keys from
`jax.random.key` and raw `uint32` keys), Python `int`/`float`/`bool`, or `None`,
to one file. `load` reads it back; given `like`, a template pytree such as
`{"params": cell.init(key, ...), "opt_state": optimizer.init(params)}`, it
checks every leaf and returns exactly `like`'s structure, optax's NamedTuple
states included. `save_step` and `latest` keep numbered checkpoints in a
directory, so a training loop resumes where it stopped.

The format is a zip archive in NumPy's `.npz` layout, so `numpy.load` and
`unzip` can read it:

- `header.json`, first: the format name and version, the tree's structure,
  one entry per leaf (its key path, kind, dtype and shape, or the value of a
  Python scalar), the caller's `metadata`, and a SHA-256 checksum over the
  header and every array's bytes.
- `leaf_<i>.npy`, one per array leaf, written and read with
  `allow_pickle=False`. Dtypes NumPy has no name for in a `.npy` file
  (bfloat16, the float8 family, int4) are stored as their raw bits in an
  unsigned integer of the same width; the header records the real dtype.
  A typed PRNG key is stored as `jax.random.key_data` with its impl name.

Loading never executes code: JSON and `.npy` arrays read with
`allow_pickle=False` cannot carry any, and a file that asks for an object
array is rejected. Writing is atomic: the archive goes to a temporary file in
the same directory, is flushed and `fsync`ed, then `os.replace` moves it over
the destination, so a crash leaves either the old file or the new one, never
half of one. Truncation and corruption fail the checksum (or the zip's own
CRC), and `load` says so instead of returning wrong numbers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import struct
import time
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["latest", "load", "read_metadata", "save", "save_step"]

PyTree = Any
"""A pytree of arrays, PRNG keys, Python scalars and `None`."""

FORMAT = "jaxrnn.checkpoint"
"""The `format` field of every checkpoint header."""
VERSION = 1
"""The format version this module writes and reads."""

_HEADER = "header.json"
_KINDS = ("array", "key", "int", "float", "bool")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_DATE = (1980, 1, 1, 0, 0, 0)  # a fixed zip timestamp: the same tree gives the same bytes
_ROOT = "<root>"


# -- writing ------------------------------------------------------------------------------------


def _path_name(path: tuple) -> str:
    return jax.tree_util.keystr(path) or _ROOT


def _stored_dtype(dtype: np.dtype) -> np.dtype | None:
    """The dtype a `.npy` member holds for arrays of `dtype`; None if it cannot be stored."""
    if dtype.kind in "biufc":
        return dtype.newbyteorder("=")
    if dtype.kind == "V" and (
        jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    ):
        # ml_dtypes types (bfloat16, float8_*, int4): a .npy header cannot name them.
        return np.dtype(f"uint{8 * dtype.itemsize}")
    return None


def _is_key(leaf: Any) -> bool:
    dtype = getattr(leaf, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)


def _encode_leaf(name: str, leaf: Any, member: str) -> tuple[dict[str, Any], np.ndarray | None]:
    """The header entry for one leaf, and the array to store for it (None for a scalar)."""
    if isinstance(leaf, jax.core.Tracer):
        raise TypeError(
            f"tree{name} is a traced value; save concrete arrays, outside jax.jit and jax.grad"
        )
    if isinstance(leaf, bool):
        return {"kind": "bool", "value": leaf}, None
    if isinstance(leaf, int):
        return {"kind": "int", "value": int(leaf)}, None
    if isinstance(leaf, float):
        return {"kind": "float", "value": float(leaf).hex()}, None
    if isinstance(leaf, jax.Array) and _is_key(leaf):
        data = np.asarray(jax.random.key_data(leaf))
        entry = {
            "kind": "key",
            "impl": str(jax.random.key_impl(leaf)),
            "dtype": str(leaf.dtype),
            "shape": list(leaf.shape),
            "member": member,
        }
        return entry, data
    if isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
        arr = np.asarray(leaf)
        stored = _stored_dtype(arr.dtype)
        if stored is None:
            raise TypeError(
                f"tree{name} has dtype {arr.dtype}, which a checkpoint cannot hold; leaves must "
                f"be numeric or bool arrays, PRNG keys, Python int/float/bool or None"
            )
        entry = {
            "kind": "array",
            "dtype": arr.dtype.name,
            "shape": list(arr.shape),
            "member": member,
        }
        native = arr.dtype.newbyteorder("=") if arr.dtype.kind in "biufc" else arr.dtype
        return entry, np.asarray(arr, dtype=native, order="C").view(stored)
    raise TypeError(
        f"tree{name} is a {type(leaf).__name__}; checkpoint leaves must be arrays (JAX or NumPy), "
        f"PRNG keys, Python int/float/bool or None (put other values in metadata)"
    )


def _json_key(key: Any) -> Any:
    return key if isinstance(key, (str, int)) else repr(key)


def _encode(tree: PyTree) -> tuple[Any, list[dict[str, Any]], list[np.ndarray]]:
    """The JSON structure of `tree`, its leaf entries and the arrays to store, in leaf order."""
    entries: list[dict[str, Any]] = []
    arrays: list[np.ndarray] = []

    def visit(node: Any, path: tuple) -> Any:
        if node is None:
            return None
        treedef = jax.tree_util.tree_structure(node)
        if treedef.num_nodes == 1 and treedef.num_leaves == 1:
            member = f"leaf_{len(arrays)}"
            entry, array = _encode_leaf(jax.tree_util.keystr(path), node, member)
            entry = {"path": _path_name(path), **entry}
            if array is not None:
                arrays.append(array)
            entries.append(entry)
            return {"leaf": len(entries) - 1}
        # One level of the pytree: every child, None included, counts as a leaf here.
        level, _ = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
        children = [(key, child) for (key,), child in level]
        first = children[0][0] if children else None
        type_name = type(node).__name__
        if isinstance(first, jax.tree_util.DictKey) or (not children and isinstance(node, dict)):
            items = [[_json_key(k.key), visit(c, (*path, k))] for k, c in children]
            return {"dict": items, "type": type_name}
        if isinstance(first, jax.tree_util.GetAttrKey) or (
            not children and hasattr(node, "_fields")
        ):
            items = [[k.name, visit(c, (*path, k))] for k, c in children]
            return {"attrs": items, "type": type_name}
        return {"list": [visit(c, (*path, k)) for k, c in children], "type": type_name}

    return visit(tree, ()), entries, arrays


def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _bytes(array: np.ndarray) -> memoryview:
    return memoryview(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable, where the platform allows it."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some filesystems cannot fsync a directory; the rename still happened
        pass
    finally:
        os.close(fd)


def _as_path(path: Any, name: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__}")
    return Path(path)


def save(
    path: str | os.PathLike, tree: PyTree, *, metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write `tree` to the file `path` atomically.

    The file is a zip archive in NumPy's `.npz` layout (see the module
    docstring): a JSON header describing the tree, its dtypes and shapes, with
    a SHA-256 checksum, and one `.npy` member per array. It is first written
    to a temporary file next to `path`, flushed and `fsync`ed, then moved over
    `path` with `os.replace`: whatever happens, `path` holds either its old
    contents or the complete new checkpoint. If writing fails, the temporary
    file is removed and the error propagates.

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
      >>> tree = {"w": jnp.arange(6.0).reshape(2, 3), "step": 3, "key": jax.random.key(0)}
      >>> path = pathlib.Path(tempfile.mkdtemp()) / "ckpt.npz"
      >>> checkpoint.save(path, tree, metadata={"loss": 0.25}).name
      'ckpt.npz'
      >>> restored = checkpoint.load(path, like=tree)
      >>> restored["step"], restored["w"].dtype, checkpoint.read_metadata(path)
      (3, dtype('float32'), {'loss': 0.25})
    """
    path = _as_path(path, "path")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
        raise TypeError(
            f"metadata must be a mapping with str keys, got {type(metadata).__name__} {metadata!r}"
        )
    try:
        # A JSON round trip normalises the values (tuples become lists), so the checksum of
        # the header that load parses equals the one computed here.
        metadata = json.loads(json.dumps(dict(metadata)))
    except (TypeError, ValueError) as e:
        raise TypeError(f"metadata must be JSON-serialisable: {e}") from e
    structure, entries, arrays = _encode(tree)
    body = {
        "format": FORMAT,
        "version": VERSION,
        "tree": structure,
        "leaves": entries,
        "metadata": metadata,
    }
    digest = hashlib.sha256(_canonical(body))
    for array in arrays:
        digest.update(_bytes(array))
    header = json.dumps({**body, "sha256": digest.hexdigest()}).encode()

    if path.is_dir():
        raise IsADirectoryError(f"path {str(path)!r} is a directory; give a file name")
    directory = path.parent
    if not directory.is_dir():
        raise FileNotFoundError(
            f"cannot save {str(path)!r}: directory {str(directory)!r} does not exist "
            f"(create it first, or use save_step, which does)"
        )
    temporary = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(temporary, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                archive.writestr(_zip_info(_HEADER), header)
                for entry, array in zip((e for e in entries if "member" in e), arrays, strict=True):
                    with archive.open(
                        _zip_info(entry["member"] + ".npy"), "w", force_zip64=True
                    ) as out:
                        np.lib.format.write_array(out, array, allow_pickle=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)
    return path


# -- reading ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _reading(path: Path, what: str) -> Iterator[None]:
    """Turn a low-level read error into a ValueError that names the file and the part."""
    try:
        yield
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        struct.error,
        UnicodeDecodeError,
        json.JSONDecodeError,
        NotImplementedError,
    ) as e:
        raise _bad(path, f"{what}: {e}") from e


def _bad(path: Path, problem: str) -> ValueError:
    return ValueError(f"checkpoint {str(path)!r} is corrupt: {problem}")


def _field(path: Path, entry: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = entry.get(key) if isinstance(entry, Mapping) else None
    # bool is an int in Python, but an int field holding true/false is malformed.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _bad(path, f"malformed header: leaf entry {entry!r} has no valid {key!r}")
    return value


def _dtype_named(path: Path, name: Any) -> np.dtype:
    if isinstance(name, str) and _NAME.fullmatch(name):
        with contextlib.suppress(TypeError):
            dtype = np.dtype(name)
            if dtype.name == name and _stored_dtype(dtype) is not None:
                return dtype
    raise _bad(path, f"malformed header: unknown dtype {name!r}")


def _shape(path: Path, entry: Mapping[str, Any]) -> tuple[int, ...]:
    shape = _field(path, entry, "shape", list)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise _bad(path, f"malformed header: leaf entry {entry!r} has an invalid shape")
    return tuple(shape)


def _read(path: Path) -> tuple[dict[str, Any], list[Any]]:
    """The verified header of the checkpoint at `path`, and the value of each leaf entry.

    Array leaves come back as NumPy arrays of their real dtype, keys as typed JAX
    key arrays, scalars as Python scalars.
    """
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise ValueError(
            f"{str(path)!r} is not a readable checkpoint: it is not a zip archive, or it is "
            f"truncated ({e})"
        ) from e
    with archive:
        names = archive.namelist()
        if _HEADER not in names:
            raise ValueError(
                f"{str(path)!r} is not a jaxrnn checkpoint: the archive has no {_HEADER} "
                f"(found members {names[:5]}); write checkpoints with jaxrnn.checkpoint.save"
            )
        with _reading(path, f"reading {_HEADER}"):
            header = json.loads(archive.read(_HEADER).decode("utf-8"))
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            found = header.get("format") if isinstance(header, dict) else type(header).__name__
            raise ValueError(
                f"{str(path)!r} is not a jaxrnn checkpoint: {_HEADER} has format {found!r}, "
                f"expected {FORMAT!r}"
            )
        version = header.get("version")
        if version != VERSION:
            newer = isinstance(version, int) and version > VERSION
            raise ValueError(
                f"checkpoint {str(path)!r} has format version {version!r} but this jaxrnn reads "
                f"version {VERSION}"
                + ("; it was written by a newer jaxrnn, upgrade to read it" if newer else "")
            )
        entries = header.get("leaves")
        if not isinstance(entries, list):
            raise _bad(path, "malformed header: no list of leaves")
        checksum = header.pop("sha256", None)
        digest = hashlib.sha256(_canonical(header))
        members = []
        for entry in entries:
            kind = _field(path, entry, "kind", str)
            if kind not in _KINDS:
                raise _bad(path, f"malformed header: unknown leaf kind {kind!r}")
            _field(path, entry, "path", str)
            if kind in ("array", "key"):
                members.append(_field(path, entry, "member", str) + ".npy")
        expected_names = {_HEADER, *members}
        if len(members) + 1 != len(expected_names) or set(names) != expected_names:
            missing = sorted(expected_names - set(names))
            unexpected = sorted(set(names) - expected_names)
            raise _bad(
                path,
                f"archive members do not match the header: missing {missing}, "
                f"unexpected {unexpected}",
            )

        values: list[Any] = []
        for entry in entries:
            kind = entry["kind"]
            if kind == "int":
                values.append(_field(path, entry, "value", int))
                continue
            if kind == "bool":
                values.append(_field(path, entry, "value", bool))
                continue
            if kind == "float":
                try:
                    values.append(float.fromhex(_field(path, entry, "value", str)))
                except ValueError as e:
                    raise _bad(path, f"leaf {entry['path']} has an invalid float") from e
                continue
            member = entry["member"] + ".npy"
            with _reading(path, f"member {member}"), archive.open(member) as file:
                try:
                    stored = np.lib.format.read_array(file, allow_pickle=False)
                except ValueError as e:
                    raise _bad(path, f"member {member} of leaf {entry['path']}: {e}") from e
            shape = _shape(path, entry)
            if kind == "key":
                want_dtype, ok_shape = np.dtype(np.uint32), stored.shape[:-1] == shape
            else:
                dtype = _dtype_named(path, entry.get("dtype"))
                want_dtype, ok_shape = _stored_dtype(dtype), stored.shape == shape
            if stored.dtype.newbyteorder("=") != want_dtype or not ok_shape:
                raise _bad(
                    path,
                    f"member {member} of leaf {entry['path']} holds {stored.dtype} "
                    f"{stored.shape}, but the header says {entry.get('dtype')} {list(shape)}",
                )
            digest.update(_bytes(stored))
            stored = stored.astype(want_dtype, copy=False)
            if kind == "key":
                impl = _field(path, entry, "impl", str)
                _field(path, entry, "dtype", str)
                try:
                    values.append(jax.random.wrap_key_data(stored, impl=impl))
                except (TypeError, ValueError) as e:
                    raise _bad(path, f"leaf {entry['path']} is not a valid {impl} key: {e}") from e
            else:
                values.append(stored.view(dtype))
    if digest.hexdigest() != checksum:
        raise _bad(
            path,
            f"SHA-256 checksum mismatch (header says {checksum}, contents give "
            f"{digest.hexdigest()}); the file was modified or damaged after it was written",
        )
    return header, values


def _build(path: Path, node: Any, values: list[Any]) -> Any:
    """Nested dicts and lists from the header's tree structure."""
    try:
        if node is None:
            return None
        if "leaf" in node:
            return values[node["leaf"]]
        if "dict" in node:
            return {key: _build(path, child, values) for key, child in node["dict"]}
        if "attrs" in node:
            return {name: _build(path, child, values) for name, child in node["attrs"]}
        return [_build(path, child, values) for child in node["list"]]
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise _bad(path, f"malformed tree structure in the header ({e!r})") from e


def _describe_entry(entry: Mapping[str, Any]) -> str:
    kind = entry["kind"]
    if kind == "array":
        return f"an array of shape {tuple(entry['shape'])} and dtype {entry['dtype']}"
    if kind == "key":
        return f"a PRNG key array of shape {tuple(entry['shape'])} and dtype {entry['dtype']}"
    return f"a Python {kind}"


def _describe_like(leaf: Any) -> str:
    if isinstance(leaf, (bool, int, float)):
        return f"a Python {type(leaf).__name__}"
    kind = "a PRNG key array" if _is_key(leaf) else "an array"
    return f"{kind} of shape {tuple(leaf.shape)} and dtype {leaf.dtype}"


def _restore(path: Path, name: str, entry: Mapping[str, Any], value: Any, leaf: Any) -> Any:
    """`value` shaped and typed like the template leaf `leaf`, or an error naming the leaf."""
    if isinstance(leaf, bool):
        matches = entry["kind"] == "bool"
    elif isinstance(leaf, int):
        matches = entry["kind"] == "int"
    elif isinstance(leaf, float):
        matches = entry["kind"] == "float"
    elif isinstance(leaf, (jax.Array, jax.ShapeDtypeStruct, np.ndarray, np.generic)):
        kind = "key" if _is_key(leaf) else "array"
        matches = (
            entry["kind"] == kind
            and tuple(entry["shape"]) == tuple(leaf.shape)
            and entry["dtype"] == (str(leaf.dtype) if kind == "key" else np.dtype(leaf.dtype).name)
        )
    else:
        raise TypeError(
            f"like{name} is a {type(leaf).__name__}; template leaves must be arrays, "
            f"jax.ShapeDtypeStruct, PRNG keys or Python int/float/bool"
        )
    if not matches:
        raise ValueError(
            f"checkpoint {str(path)!r} does not match like at leaf {name}: like has "
            f"{_describe_like(leaf)} but the file has {_describe_entry(entry)}"
        )
    if isinstance(leaf, np.generic):
        return value[()]
    if isinstance(leaf, (jax.Array, jax.ShapeDtypeStruct)) and entry["kind"] == "array":
        return jnp.asarray(value)
    return value


def _limited(names: list[str]) -> str:
    shown = ", ".join(names[:8])
    return shown + (f" and {len(names) - 8} more" if len(names) > 8 else "") if names else "none"


def load(path: str | os.PathLike, like: PyTree | None = None) -> PyTree:
    """Read a checkpoint written by `save`, verifying it completely.

    The header's format and version, the archive's members, every array's
    dtype and shape and the SHA-256 checksum over everything are checked
    before anything is returned. Nothing in the file can run code: the header
    is JSON and arrays are read with `allow_pickle=False`.

    With `like`, a template pytree (freshly initialised params, the state of
    `optimizer.init(params)`, `jax.eval_shape` of either, a step counter), the
    file must hold exactly `like`'s leaves, matched by key path, each with
    `like`'s kind, shape and dtype. The result is unflattened into `like`'s
    tree structure, so optax's NamedTuple states come back as the same types.
    JAX leaves (and `jax.ShapeDtypeStruct`) of `like` become JAX arrays on the
    default device, NumPy leaves NumPy arrays, Python scalars Python scalars.

    Without `like`, the result is built from nested dicts and lists: dicts stay
    dicts, tuples and lists become lists, NamedTuples and other pytree nodes
    with named fields become dicts keyed by field name, `None` stays `None`.
    Arrays come back as NumPy arrays of their saved dtype (float64 stays
    float64 without `jax_enable_x64`), typed PRNG keys as JAX key arrays and
    Python scalars as themselves.

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
        object array), has an unsupported format version, or, with `like`,
        has missing or extra leaves or a leaf of another kind, shape or dtype;
        the message names the key path and both sides.
      TypeError: a leaf of `like` is not an array, key or Python scalar.
      FileNotFoundError: `path` does not exist.

    Examples:
      >>> import tempfile, pathlib, jax, optax
      >>> import jaxrnn as jr
      >>> from jaxrnn import checkpoint
      >>> params = jr.lstm(4).init(jax.random.key(0), input_size=3)
      >>> opt_state = optax.adam(1e-3).init(params)
      >>> path = checkpoint.save(pathlib.Path(tempfile.mkdtemp()) / "c.npz", (params, opt_state))
      >>> params2, opt_state2 = checkpoint.load(path, like=(params, opt_state))
      >>> type(opt_state2[0]).__name__, bool((params2["w_h"] == params["w_h"]).all())
      ('ScaleByAdamState', True)
      >>> raw_params, raw_opt_state = checkpoint.load(path)  # no template: lists, dicts, NumPy
      >>> adam_state = raw_opt_state[0]
      >>> sorted(adam_state), type(raw_params.get("w_x")).__name__
      (['count', 'mu', 'nu'], 'ndarray')
    """
    path = _as_path(path, "path")
    header, values = _read(path)
    if like is None:
        return _build(path, header["tree"], values)
    entries = {
        entry["path"]: (entry, value) for entry, value in zip(header["leaves"], values, strict=True)
    }
    flat, treedef = jax.tree_util.tree_flatten_with_path(like)
    names = [_path_name(p) for p, _ in flat]
    known = set(names)
    missing = [n for n in names if n not in entries]
    extra = [n for n in entries if n not in known]
    if missing or extra:
        raise ValueError(
            f"checkpoint {str(path)!r} does not match like: leaves in like but missing from the "
            f"file: {_limited(missing)}; leaves in the file but not in like: {_limited(extra)}"
        )
    restored = [
        _restore(path, n, *entries[n], leaf) for n, (_, leaf) in zip(names, flat, strict=True)
    ]
    return jax.tree_util.tree_unflatten(treedef, restored)


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
      >>> _ = checkpoint.save(path, {"w": np.zeros(3)}, metadata={"lr": 1e-3, "sizes": (4, 8)})
      >>> checkpoint.read_metadata(path)
      {'lr': 0.001, 'sizes': [4, 8]}
    """
    header, _ = _read(_as_path(path, "path"))
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict):
        raise _bad(Path(path), "malformed header: metadata is not an object")
    return metadata


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
    found = []
    for entry in directory.iterdir():
        match = pattern.fullmatch(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


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
      keep: how many checkpoints of this prefix to keep, at least 1, or None
        to keep all.
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
      ...     path = checkpoint.save_step(directory, step, {"w": np.full(2, step)}, keep=2)
      >>> sorted(p.name for p in path.parent.iterdir())
      ['ckpt_00000020.npz', 'ckpt_00000030.npz']
    """
    directory = _as_path(directory, "directory")
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise TypeError(f"step must be a non-negative int, got {type(step).__name__} {step!r}")
    if step < 0:
        raise ValueError(f"step must be a non-negative int, got {step}")
    if keep is not None:
        if isinstance(keep, bool) or not isinstance(keep, (int, np.integer)):
            raise TypeError(f"keep must be a positive int or None, got {type(keep).__name__}")
        if keep < 1:
            raise ValueError(f"keep must be at least 1 (the file just written), got {keep}")
    prefix = _check_prefix(prefix)
    directory.mkdir(parents=True, exist_ok=True)
    path = save(directory / f"{prefix}_{int(step):08d}.npz", tree, metadata=metadata)
    # Another writer's live temporary file is younger than a minute; a killed one stays.
    for leftover in directory.glob(f".{prefix}_*.npz.*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - leftover.stat().st_mtime > 60:
                leftover.unlink()
    if keep is not None:
        others = [p for _, p in _numbered(directory, prefix) if p.name != path.name]
        for old in others[: max(0, len(others) + 1 - keep)]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
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
    if not directory.is_dir():
        return None
    for _, path in reversed(_numbered(directory, prefix)):
        try:
            _read(path)
        except (ValueError, OSError) as e:
            warnings.warn(f"skipping checkpoint {str(path)!r}: {e}", RuntimeWarning, stacklevel=2)
            continue
        return path
    return None
