"""Train a character-level LSTM language model and sample text from it.

The model reads text one character at a time and predicts the next one:

    character ids (T, batch) -> embedding (T, batch, E) -> LSTM (T, batch, H)
                             -> dense head (T, batch, V) logits over the vocabulary

The LSTM runs over time with `jaxrnn.unroll` (one `jax.lax.scan`); the dense head is
applied to every step at once after the scan. Params are a plain dict pytree, every
source of randomness is an explicit PRNG key derived from `--seed`, and the same seed
gives the same run. Training uses optax (Adam after clipping the global gradient
norm) through `jaxrnn.train` on random windows of the training split (the first 90%
of the text); the loss on the validation split (the last 10%) is reported in nats and
in bits per character. Finally the model continues `--prompt` for `--sample-len`
characters, at `--temperature`, optionally among the `--top-k` likeliest.

With `--out DIR` the run keeps checkpoints in DIR/checkpoints (every
`--checkpoint-every` steps, at the end, and on Ctrl-C) and writes DIR/metrics.json
and DIR/loss_curve.png; `--resume` continues it bit for bit. A NaN loss stops the run
with the step it happened at. `--data-parallel` shards each batch across all devices.

Run it with the defaults (about a minute on two CPU cores):

    python examples/char_lm.py
    python examples/char_lm.py --steps 3000 --out runs/shakespeare
    python examples/char_lm.py --steps 6000 --out runs/shakespeare --resume
    python examples/char_lm.py --data my_text.txt --prompt "Once upon" --temperature 0.6
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from cli import (
    add_optimizer_arguments,
    add_output_arguments,
    check_output_arguments,
    finish,
    make_optimizer,
    positive_float,
    positive_int,
    train,
)

import jaxrnn as jr

Array = jax.Array
Params = dict[str, Any]

DEFAULT_DATA = Path(__file__).resolve().parent / "data" / "tiny_shakespeare.txt"
VALIDATION_FRACTION = 0.1
EVAL_CHUNK = 256
"""Validation windows per forward pass; bounds memory for large corpora."""


# --------------------------------------------------------------------------- data


def build_vocab(text: str) -> str:
    """The sorted distinct characters of `text`; a character's id is its index.

    Args:
      text: the corpus.

    Returns:
      A string of `V` distinct characters in sorted order.

    Examples:
      >>> build_vocab("hello")
      'ehlo'
    """
    return "".join(sorted(set(text)))


def encode(text: str, vocab: str) -> np.ndarray:
    """Character ids of `text`, an int32 array `(len(text),)`.

    Args:
      text: characters that all appear in `vocab`.
      vocab: the vocabulary from `build_vocab`.

    Returns:
      An int32 NumPy array of ids in `[0, V)`.

    Raises:
      ValueError: `text` has characters that are not in `vocab`; the message lists them.

    Examples:
      >>> encode("hole", "ehlo")
      array([1, 3, 2, 0], dtype=int32)
    """
    index = {c: i for i, c in enumerate(vocab)}
    unknown = sorted(set(text) - set(index))
    if unknown:
        raise ValueError(
            f"text has {len(unknown)} character(s) not in the vocabulary: "
            f"{', '.join(repr(c) for c in unknown)}; the vocabulary is {vocab!r}"
        )
    return np.fromiter((index[c] for c in text), dtype=np.int32, count=len(text))


def decode(ids: Any, vocab: str) -> str:
    """The text that the character ids `ids (n,)` stand for.

    Examples:
      >>> decode([1, 3, 2, 0], "ehlo")
      'hole'
    """
    return "".join(vocab[int(i)] for i in np.asarray(ids).reshape(-1))


def split_train_validation(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first 90% of `ids (N,)` for training and the last 10% for validation.

    A contiguous split (rather than random windows) keeps validation text unseen.

    Examples:
      >>> train, val = split_train_validation(np.arange(20, dtype=np.int32))
      >>> len(train), len(val)
      (18, 2)
    """
    cut = round(len(ids) * (1.0 - VALIDATION_FRACTION))
    return ids[:cut], ids[cut:]


def random_windows(key: Array, data: Array, batch_size: int, seq_len: int) -> Array:
    """`batch_size` random windows of `seq_len + 1` consecutive ids, time-major.

    Args:
      key: a PRNG key.
      data: int ids `(N,)` with `N > seq_len`.
      batch_size: number of windows `B`.
      seq_len: characters the model reads per window, `T`; each window has one
        more id so that inputs `[:-1]` and targets `[1:]` both have `T` steps.

    Returns:
      Int ids `(T + 1, B)`.

    Examples:
      >>> w = random_windows(jax.random.key(0), jnp.arange(50), batch_size=3, seq_len=4)
      >>> w.shape, bool(jnp.all(w[1:] - w[:-1] == 1))
      ((5, 3), True)
    """
    starts = jax.random.randint(key, (batch_size,), 0, data.shape[0] - seq_len)
    offsets = jnp.arange(seq_len + 1, dtype=starts.dtype)
    return data[offsets[:, None] + starts[None, :]]


def validation_windows(ids: np.ndarray, seq_len: int) -> np.ndarray:
    """The validation split cut into non-overlapping windows `(n, seq_len + 1)`.

    Consecutive windows share one boundary character, so every character but the
    first is predicted exactly once.

    Examples:
      >>> validation_windows(np.arange(10, dtype=np.int32), seq_len=4)
      array([[0, 1, 2, 3, 4],
             [4, 5, 6, 7, 8]], dtype=int32)
    """
    n = (len(ids) - 1) // seq_len
    starts = np.arange(n) * seq_len
    return ids[starts[:, None] + np.arange(seq_len + 1)[None, :]]


# -------------------------------------------------------------------------- model


def init_params(key: Array, cell: jr.Cell, vocab_size: int, embed_size: int) -> Params:
    """Parameters of the embedding, the LSTM and the dense head.

    Args:
      key: a PRNG key; the same key gives the same params.
      cell: the recurrent cell, e.g. `jaxrnn.lstm(256)` (its `hidden_size` is `H`).
      vocab_size: number of distinct characters `V`.
      embed_size: size of each character's embedding `E`.

    Returns:
      `{"embed": (V, E), "lstm": cell params for input size E,
      "head": {"w": (H, V), "b": (V,)}}`.

    Examples:
      >>> p = init_params(jax.random.key(0), jr.lstm(8), vocab_size=5, embed_size=3)
      >>> p["embed"].shape, p["lstm"]["w_x"].shape, p["head"]["w"].shape
      ((5, 3), (3, 32), (8, 5))
    """
    k_embed, k_cell, k_head = jax.random.split(key, 3)
    return {
        "embed": jax.random.normal(k_embed, (vocab_size, embed_size)),
        "lstm": cell.init(k_cell, input_size=embed_size),
        "head": jr.dense(vocab_size).init(k_head, cell.hidden_size),
    }


def readout(params: Params, hs: Array) -> Array:
    """Logits `(..., V)` from LSTM outputs `hs (..., H)`."""
    return jr.dense(params["head"]["w"].shape[1]).apply(params["head"], hs)


def forward(cell: jr.Cell, params: Params, tokens: Array) -> Array:
    """Next-character logits for every position of `tokens`.

    Args:
      cell: the cell `params["lstm"]` was made for.
      params: as `init_params` returns them.
      tokens: int ids `(T, *batch)`, time-major.

    Returns:
      Logits `(T, *batch, V)`; position `t` scores the character after `tokens[t]`.

    Examples:
      >>> cell = jr.lstm(8)
      >>> p = init_params(jax.random.key(0), cell, vocab_size=5, embed_size=3)
      >>> forward(cell, p, jnp.zeros((7, 2), jnp.int32)).shape
      (7, 2, 5)
    """
    _, hs = jr.unroll(cell, params["lstm"], params["embed"][tokens])
    return readout(params, hs)


def loss_fn(cell: jr.Cell, params: Params, windows: Array, key: Array | None = None) -> Array:
    """Mean next-character cross-entropy, in nats, over windows `(T + 1, *batch)`.

    `key` is unused (the model has no dropout); it is there for `jaxrnn.train`.
    """
    logits = forward(cell, params, windows[:-1])
    return jr.sequence_softmax_cross_entropy(logits, windows[1:])


@functools.partial(jax.jit, static_argnames=("batch_size", "seq_len"))
def batch_at(key: Array, step: int | Array, data: Array, batch_size: int, seq_len: int) -> Array:
    """The windows `(T + 1, B)` that training step `step` uses, from `key` and `step` alone.

    Each step draws from `jax.random.fold_in(key, step)`, so a resumed run sees
    exactly the batches it would have seen without stopping.
    """
    return random_windows(jax.random.fold_in(key, step), data, batch_size, seq_len)


@functools.partial(jax.jit, static_argnames=("cell",))
def _window_losses(params: Params, cell: jr.Cell, windows: Array) -> Array:
    """Summed cross-entropy of each window in `windows (n, T + 1)`, shape `(n,)`."""
    logits = forward(cell, params, windows.T[:-1])
    return jr.sequence_softmax_cross_entropy(logits, windows.T[1:], reduction="none").sum(axis=0)


def evaluate(params: Params, cell: jr.Cell, windows: np.ndarray) -> float:
    """Mean cross-entropy in nats per character over all `windows (n, T + 1)`.

    Each window starts from a zero state. Windows go through in chunks of equal
    size (the last one padded and masked), so one compilation serves every call.

    Examples:
      >>> cell = jr.lstm(8)
      >>> p = init_params(jax.random.key(0), cell, vocab_size=5, embed_size=3)
      >>> w = validation_windows(np.arange(40, dtype=np.int32) % 5, seq_len=6)
      >>> abs(evaluate(p, cell, w) - math.log(5)) < 0.5
      True
    """
    n, chars = windows.shape[0], windows.shape[1] - 1
    chunk = min(n, EVAL_CHUNK)
    padded = -(-n // chunk) * chunk
    rows = np.concatenate([windows, np.repeat(windows[:1], padded - n, axis=0)])
    total = 0.0
    for start in range(0, padded, chunk):
        losses = np.asarray(_window_losses(params, cell, jnp.asarray(rows[start : start + chunk])))
        total += float(losses[: max(0, n - start)].sum(dtype=np.float64))
    return total / (n * chars)


@functools.partial(jax.jit, static_argnames=("cell", "length", "top_k"))
def sample(
    params: Params,
    cell: jr.Cell,
    prompt: Array,
    key: Array,
    temperature: float | Array,
    length: int,
    top_k: int | None = None,
) -> Array:
    """Continue `prompt` by sampling `length` characters, one at a time.

    The prompt but its last character is read with `jaxrnn.unroll`; then
    `jaxrnn.generate` feeds the last prompt character and each drawn one back
    through `cell.step`, drawing from `softmax(logits / temperature)`,
    restricted to the `top_k` most likely characters when given.

    Args:
      params: as `init_params` returns them.
      cell: the cell `params["lstm"]` was made for.
      prompt: int ids `(P,)` with `P >= 1`.
      key: a PRNG key; the same key gives the same text.
      temperature: positive scalar; below 1 sharpens the distribution, above 1
        flattens it.
      length: number of characters to draw, `L`.
      top_k: draw only among the `top_k` most likely characters (None: all).

    Returns:
      Int ids `(L,)` of the sampled continuation (without the prompt).

    Examples:
      >>> cell = jr.lstm(8)
      >>> p = init_params(jax.random.key(0), cell, vocab_size=5, embed_size=3)
      >>> ids = sample(p, cell, jnp.array([1, 2]), jax.random.key(1), 1.0, length=10)
      >>> ids.shape, bool(jnp.all((ids >= 0) & (ids < 5)))
      ((10,), True)
    """
    embed = params["embed"]
    carry, _ = jr.unroll(cell, params["lstm"], embed[prompt[:-1]])
    _, chars, _ = jr.generate(
        cell,
        params["lstm"],
        carry,
        embed[prompt[-1]],
        length,
        readout=lambda h: readout(params, h),
        embed=lambda token: embed[token],
        key=key,
        temperature=temperature,
        top_k=top_k,
    )
    return chars


# ------------------------------------------------------------------ command line


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (`python examples/char_lm.py --help`)."""
    parser = argparse.ArgumentParser(
        prog="char_lm.py",
        description=(
            "Train a character-level LSTM language model with jaxrnn and optax, report its "
            "validation loss in bits per character, and sample text from it. The text is "
            "split 90/10 into training and validation parts; each step trains on random "
            "windows of --seq-len characters. The defaults (the bundled Shakespeare corpus) "
            "finish in a few minutes on two CPU cores, with the loss falling from ln(V) "
            "(about 4.1 nats) to below 2."
        ),
        epilog=(
            "Same --seed, same run: every random choice (init, batches, sampling) comes "
            "from keys split off the seed. With --out DIR the script writes checkpoints to "
            "DIR/checkpoints (every --checkpoint-every steps, at the end and on Ctrl-C), "
            "DIR/metrics.json (final train loss averaged over the last --log-every steps, "
            "validation loss and bits per character, steps, wall time, the logged curve and "
            "the sample) and DIR/loss_curve.png; --resume continues such a run exactly "
            "where it stopped. --data-parallel splits each batch across all devices "
            "(GPUs, or CPU devices simulated with "
            "XLA_FLAGS=--xla_force_host_platform_device_count=N)."
        ),
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        metavar="PATH",
        help="UTF-8 text file to model (default: data/tiny_shakespeare.txt next to this script)",
    )
    data.add_argument(
        "--seq-len",
        type=positive_int,
        default=64,
        metavar="N",
        help="characters per training window (default: %(default)s)",
    )
    data.add_argument(
        "--batch-size",
        type=positive_int,
        default=32,
        metavar="N",
        help="windows per step (default: %(default)s)",
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--hidden",
        type=positive_int,
        default=256,
        metavar="N",
        help="LSTM hidden size (default: %(default)s)",
    )
    model.add_argument(
        "--embed",
        type=positive_int,
        default=64,
        metavar="N",
        help="character embedding size (default: %(default)s)",
    )
    training = parser.add_argument_group("training")
    add_optimizer_arguments(training, steps=1000)
    training.add_argument(
        "--data-parallel",
        action="store_true",
        help="shard each batch across all devices (jax.sharding.Mesh), params replicated; "
        "--batch-size must be a multiple of the device count",
    )
    training.add_argument(
        "--log-every",
        type=positive_int,
        default=100,
        metavar="N",
        help="log the mean training loss every N steps, the validation loss at about four "
        "of them (default: %(default)s)",
    )
    out = parser.add_argument_group("sampling and output")
    out.add_argument(
        "--prompt",
        default="GLOUCESTER:\n",
        metavar="TEXT",
        help="text the sample continues; every character must occur in the data "
        "(default: %(default)r)",
    )
    out.add_argument(
        "--sample-len",
        type=positive_int,
        default=400,
        metavar="N",
        help="characters to sample after the prompt (default: %(default)s)",
    )
    out.add_argument(
        "--temperature",
        type=positive_float,
        default=0.8,
        metavar="X",
        help="sampling temperature, > 0; lower is more conservative (default: %(default)s)",
    )
    out.add_argument(
        "--top-k",
        type=positive_int,
        default=None,
        metavar="K",
        help="sample only among the K most likely characters (default: all)",
    )
    add_output_arguments(out, checkpoint_every=250)
    return parser


def _load(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """Read `--data` and check it against the other arguments, or exit with a usage error."""
    try:
        text = args.data.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        parser.error(f"--data {str(args.data)!r}: cannot read it as UTF-8 text ({e})")
    train_len, val_len = (len(part) for part in split_train_validation(np.arange(len(text))))
    if min(train_len, val_len) < args.seq_len + 1:
        parser.error(
            f"--data {str(args.data)!r} has {len(text)} characters, too few for --seq-len "
            f"{args.seq_len}: its training part ({train_len}) and validation part ({val_len}, "
            f"the last 10%) must each hold a window of --seq-len + 1 = {args.seq_len + 1}"
        )
    if not args.prompt:
        parser.error("--prompt must not be empty: the model needs a character to start from")
    vocab = build_vocab(text)
    unknown = sorted(set(args.prompt) - set(vocab))
    if unknown:
        parser.error(
            f"--prompt has character(s) that never occur in --data, so the model cannot read "
            f"them: {', '.join(repr(c) for c in unknown)}. Allowed characters: {vocab!r}"
        )
    if args.top_k is not None and args.top_k > len(vocab):
        parser.error(f"--top-k {args.top_k} is more than the {len(vocab)} characters of --data")
    if args.data_parallel and args.batch_size % jax.device_count():
        parser.error(
            f"--data-parallel splits --batch-size {args.batch_size} across "
            f"{jax.device_count()} devices: it must be a multiple of {jax.device_count()}"
        )
    check_output_arguments(parser, args)
    return text


# Cached: jit keys compiled code on these static arguments, so repeated runs in one
# process (tests, notebooks) with the same settings compile once.
@functools.cache
def make_cell(hidden_size: int) -> jr.Cell:
    """The model's recurrent cell, `jaxrnn.lstm(hidden_size)`."""
    return jr.lstm(hidden_size)


@functools.cache
def make_step(
    hidden_size: int, learning_rate: float, max_norm: float, data_parallel: bool
) -> jr.train.StepFn:
    """The jitted train step `(state, windows) -> (state, loss)`, sharded with `data_parallel`."""
    cell = make_cell(hidden_size)
    return jr.train.make_train_step(
        functools.partial(loss_fn, cell),
        make_optimizer(learning_rate, max_norm),
        data_parallel=jr.train.DataParallel(batch_axis=1) if data_parallel else None,
    )


MODEL_OPTIONS = ("data", "hidden", "embed", "seq_len", "batch_size", "lr", "clip", "seed")
"""The options a resumed run must share with the run it continues."""


def run(args: argparse.Namespace, text: str) -> dict[str, Any]:
    """Train (or resume), evaluate and sample as `args` says; returns the final metrics."""
    start = time.perf_counter()
    vocab = build_vocab(text)
    train_ids, val_ids = split_train_validation(encode(text, vocab))
    train_data = jnp.asarray(train_ids)
    val_windows = validation_windows(val_ids, args.seq_len)
    print(
        f"corpus: {len(text):,} characters, vocabulary {len(vocab)}; "
        f"train {len(train_ids):,}, validation {len(val_ids):,} "
        f"({len(val_windows)} windows of {args.seq_len})"
    )

    cell = make_cell(args.hidden)
    init_key, data_key, train_key, sample_key = jax.random.split(jax.random.key(args.seed), 4)
    params = init_params(init_key, cell, len(vocab), args.embed)
    n_params = sum(x.size for x in jax.tree.leaves(params))
    devices = f", data-parallel over {jax.device_count()} devices" if args.data_parallel else ""
    print(f"model: embed {args.embed}, LSTM hidden {args.hidden}, {n_params:,} parameters{devices}")

    def held_out(params: Params) -> dict[str, float]:
        return {"val_loss": evaluate(params, cell, val_windows)}

    trained = train(
        "examples/char_lm.py",
        build_parser(),
        args,
        jr.train.init_state(params, make_optimizer(args.lr, args.clip), train_key),
        MODEL_OPTIONS,
        step_fn=make_step(args.hidden, args.lr, args.clip, args.data_parallel),
        batches=lambda step: batch_at(data_key, step, train_data, args.batch_size, args.seq_len),
        evaluate=held_out,
        eval_every=args.log_every * math.ceil(args.steps / (4 * args.log_every)),
    )
    params = trained.result.state.params
    val_loss = trained.final(held_out, "val_loss")["val_loss"]
    bits = val_loss / math.log(2)
    prompt_ids = jnp.asarray(encode(args.prompt, vocab))
    sampled = decode(
        sample(
            params,
            cell,
            prompt_ids,
            sample_key,
            args.temperature,
            length=args.sample_len,
            top_k=args.top_k,
        ),
        vocab,
    )
    print(f"\nvalidation: {val_loss:.4f} nats/char = {bits:.4f} bits/char")
    top_k = "" if args.top_k is None else f", top-k {args.top_k}"
    print(f"\n--- sample (temperature {args.temperature}{top_k}) ---")
    print(f"{args.prompt}{sampled}\n---")
    return finish(
        args,
        trained,
        start,
        {"val_loss": val_loss, "val_bits_per_char": bits, "prompt": args.prompt, "sample": sampled},
        title="Character-level LSTM",
        ylabel="cross-entropy (nats / character)",
        eval_key="val_loss",
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse `argv` (default: `sys.argv[1:]`), train, evaluate and sample.

    Args:
      argv: command-line arguments, as `python examples/char_lm.py --help` lists them.

    Returns:
      The final metrics: `steps`, `train_loss` (mean over the last logged
      interval), `val_loss` (nats per character), `val_bits_per_char`,
      `wall_time_s`, `train_time_s`, `resumed_from_step`, `history` (the logged
      entries), `prompt`, `sample` (the `--sample-len` sampled characters,
      without the prompt), `checkpoint` (the last one written, or None) and
      `config`.

    Raises:
      SystemExit: bad arguments (status 2, with a usage message on stderr),
        `--help`, Ctrl-C (status 130, after saving a checkpoint) or a
        non-finite loss (status 1, naming the step).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    text = _load(parser, args)
    return run(args, text)


if __name__ == "__main__":
    main(sys.argv[1:])
