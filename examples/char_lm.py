"""Train a character-level LSTM language model and sample text from it.

The model reads text one character at a time and predicts the next one:

    character ids (T, batch) -> embedding (T, batch, E) -> LSTM (T, batch, H)
                             -> dense head (T, batch, V) logits over the vocabulary

The LSTM runs over time with `jaxrnn.unroll` (one `jax.lax.scan`); the dense head is
applied to every step at once after the scan. Params are a plain dict pytree, every
source of randomness is an explicit PRNG key derived from `--seed`, and the same seed
gives the same run. Training uses optax (Adam after clipping the global gradient
norm) on random windows of the training split (the first 90% of the text); the loss
on the validation split (the last 10%) is reported in nats and in bits per
character. Finally the model continues `--prompt` for `--sample-len` characters.

Run it with the defaults (a few minutes on two CPU cores):

    python examples/char_lm.py
    python examples/char_lm.py --steps 3000 --out runs/shakespeare
    python examples/char_lm.py --data my_text.txt --prompt "Once upon" --temperature 0.6
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from cli import add_optimizer_arguments, positive_float, positive_int
from tqdm import tqdm

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
        "head": {
            "w": jax.nn.initializers.glorot_uniform()(k_head, (cell.hidden_size, vocab_size)),
            "b": jnp.zeros((vocab_size,)),
        },
    }


def dense(params: Params, x: Array) -> Array:
    """`x @ w + b` for `x (..., H)`, `w (H, V)`, `b (V,)`; returns `(..., V)`."""
    # The bias is broadcast explicitly so the model also runs under
    # jax_numpy_rank_promotion="raise".
    bias = jnp.expand_dims(params["b"], tuple(range(x.ndim - 1)))
    return x @ params["w"] + bias


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
    return dense(params["head"], hs)


def loss_fn(params: Params, cell: jr.Cell, windows: Array) -> Array:
    """Mean next-character cross-entropy, in nats, over windows `(T + 1, *batch)`."""
    logits = forward(cell, params, windows[:-1])
    return optax.softmax_cross_entropy_with_integer_labels(logits, windows[1:]).mean()


@functools.partial(jax.jit, static_argnames=("cell", "optimizer", "batch_size", "seq_len"))
def train_step(
    params: Params,
    opt_state: optax.OptState,
    key: Array,
    data: Array,
    *,
    cell: jr.Cell,
    optimizer: optax.GradientTransformation,
    batch_size: int,
    seq_len: int,
) -> tuple[Params, optax.OptState, Array, Array]:
    """One optimizer step on a fresh batch of random windows of `data (N,)`.

    Returns:
      `(params, opt_state, key, loss)`: updated params and optimizer state, the key
      for the next step, and the batch's mean loss before the update.
    """
    key, batch_key = jax.random.split(key)
    windows = random_windows(batch_key, data, batch_size, seq_len)
    loss, grads = jax.value_and_grad(loss_fn)(params, cell, windows)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, key, loss


@functools.partial(jax.jit, static_argnames=("cell",))
def _window_losses(params: Params, cell: jr.Cell, windows: Array) -> Array:
    """Summed cross-entropy of each window in `windows (n, T + 1)`, shape `(n,)`."""
    logits = forward(cell, params, windows.T[:-1])
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, windows.T[1:])
    return losses.sum(axis=0)


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


@functools.partial(jax.jit, static_argnames=("cell", "length"))
def sample(
    params: Params,
    cell: jr.Cell,
    prompt: Array,
    key: Array,
    temperature: float | Array,
    length: int,
) -> Array:
    """Continue `prompt` by sampling `length` characters, one at a time.

    The prompt is read with `jaxrnn.unroll`; then, inside a `jax.lax.scan`, each
    step draws a character from `softmax(logits / temperature)` with its own key
    and feeds it back through `cell.step`.

    Args:
      params: as `init_params` returns them.
      cell: the cell `params["lstm"]` was made for.
      prompt: int ids `(P,)` with `P >= 1`.
      key: a PRNG key; the same key gives the same text.
      temperature: positive scalar; below 1 sharpens the distribution, above 1
        flattens it.
      length: number of characters to draw, `L`.

    Returns:
      Int ids `(L,)` of the sampled continuation (without the prompt).

    Examples:
      >>> cell = jr.lstm(8)
      >>> p = init_params(jax.random.key(0), cell, vocab_size=5, embed_size=3)
      >>> ids = sample(p, cell, jnp.array([1, 2]), jax.random.key(1), 1.0, length=10)
      >>> ids.shape, bool(jnp.all((ids >= 0) & (ids < 5)))
      ((10,), True)
    """
    carry, hs = jr.unroll(cell, params["lstm"], params["embed"][prompt])
    logits = dense(params["head"], hs[-1])

    def body(state: tuple[Any, Array], step_key: Array) -> tuple[tuple[Any, Array], Array]:
        carry, logits = state
        char = jax.random.categorical(step_key, logits / temperature)
        carry, h = cell.step(params["lstm"], carry, params["embed"][char])
        return (carry, dense(params["head"], h)), char

    _, chars = jax.lax.scan(body, (carry, logits), jax.random.split(key, length))
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
            "from keys split off the seed. With --out DIR the script writes "
            "DIR/metrics.json (final train loss averaged over the last --log-every steps, "
            "validation loss and bits per character, steps, wall time, the logged curve and "
            "the sample) and DIR/loss_curve.png."
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
    train = parser.add_argument_group("training")
    add_optimizer_arguments(train, steps=1000)
    train.add_argument(
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
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="write metrics.json and loss_curve.png here (default: write nothing)",
    )
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
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {str(args.out)!r} exists and is not a directory")
    return text


# Cached: jit keys compiled code on these static arguments, so repeated runs in one
# process (tests, notebooks) with the same settings compile once.
@functools.cache
def make_cell(hidden_size: int) -> jr.Cell:
    """The model's recurrent cell, `jaxrnn.lstm(hidden_size)`."""
    return jr.lstm(hidden_size)


@functools.cache
def make_optimizer(learning_rate: float, max_norm: float) -> optax.GradientTransformation:
    """Adam after clipping the gradients' global norm to `max_norm`."""
    return optax.chain(optax.clip_by_global_norm(max_norm), optax.adam(learning_rate))


def save_loss_curve(path: Path, losses: np.ndarray, history: list[dict[str, Any]]) -> None:
    """Write a PNG of the per-step training loss and the validation points.

    Args:
      path: the PNG to write.
      losses: training loss of every step, `(steps,)`.
      history: the logged entries; those with a `"val_loss"` are plotted as points.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, color="tab:blue", alpha=0.3, lw=0.8, label="train (per step)")
    window = min(50, max(1, len(losses) // 10))
    if window > 1:
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], smooth, color="tab:blue", label=f"train ({window}-step mean)")
    val = [(h["step"], h["val_loss"]) for h in history if "val_loss" in h]
    if val:
        ax.plot(*zip(*val, strict=True), "o-", color="tab:orange", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / character)")
    ax.set_title("Character-level LSTM")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def run(args: argparse.Namespace, text: str) -> dict[str, Any]:
    """Train, evaluate and sample as `args` says; returns the final metrics."""
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
    optimizer = make_optimizer(args.lr, args.clip)
    init_key, train_key, sample_key = jax.random.split(jax.random.key(args.seed), 3)
    params = init_params(init_key, cell, len(vocab), args.embed)
    opt_state = optimizer.init(params)
    n_params = sum(x.size for x in jax.tree.leaves(params))
    print(f"model: embed {args.embed}, LSTM hidden {args.hidden}, {n_params:,} parameters")

    step_fn = functools.partial(
        train_step, cell=cell, optimizer=optimizer, batch_size=args.batch_size, seq_len=args.seq_len
    )
    eval_every = args.log_every * math.ceil(args.steps / (4 * args.log_every))
    losses: list[Array] = []
    history: list[dict[str, Any]] = []
    key = train_key
    width = len(str(args.steps))
    train_start = time.perf_counter()
    bar = tqdm(range(1, args.steps + 1), desc="training", unit="step", dynamic_ncols=True)
    for step in bar:
        params, opt_state, key, loss = step_fn(params, opt_state, key, train_data)
        losses.append(loss)
        if step % 10 == 0 or step == 1:
            bar.set_postfix(loss=f"{float(loss):.3f}", refresh=False)
        if step == 1 or step % args.log_every == 0 or step == args.steps:
            recent = np.asarray(jax.device_get(losses[-args.log_every :]))
            entry: dict[str, Any] = {"step": step, "train_loss": float(recent.mean())}
            if not math.isfinite(entry["train_loss"]):
                bar.close()
                raise FloatingPointError(
                    f"training loss became {entry['train_loss']} at step {step}; "
                    f"try a smaller --lr (now {args.lr}) or --clip (now {args.clip})"
                )
            line = f"step {step:>{width}}/{args.steps}  train loss {entry['train_loss']:.4f}"
            if step % eval_every == 0 or step == args.steps:
                entry["val_loss"] = evaluate(params, cell, val_windows)
                bits = entry["val_loss"] / math.log(2)
                line += f"  val loss {entry['val_loss']:.4f} ({bits:.3f} bits/char)"
            history.append(entry)
            bar.write(line)
    bar.close()
    train_time = time.perf_counter() - train_start

    val_loss = history[-1]["val_loss"]
    bits = val_loss / math.log(2)
    prompt_ids = jnp.asarray(encode(args.prompt, vocab))
    sampled = decode(
        sample(params, cell, prompt_ids, sample_key, args.temperature, length=args.sample_len),
        vocab,
    )
    print(f"\nvalidation: {val_loss:.4f} nats/char = {bits:.4f} bits/char")
    print(f"\n--- sample (temperature {args.temperature}) ---\n{args.prompt}{sampled}\n---")

    all_losses = np.asarray(jax.device_get(losses), dtype=np.float64)
    metrics: dict[str, Any] = {
        "steps": args.steps,
        "train_loss": history[-1]["train_loss"],
        "val_loss": val_loss,
        "val_bits_per_char": bits,
        "wall_time_s": time.perf_counter() - start,
        "train_time_s": train_time,
        "history": history,
        "prompt": args.prompt,
        "sample": sampled,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        save_loss_curve(args.out / "loss_curve.png", all_losses, history)
        print(f"wrote {args.out / 'metrics.json'} and {args.out / 'loss_curve.png'}")
    print(f"wall time {metrics['wall_time_s']:.1f} s (training {train_time:.1f} s)")
    return metrics


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse `argv` (default: `sys.argv[1:]`), train, evaluate and sample.

    Args:
      argv: command-line arguments, as `python examples/char_lm.py --help` lists them.

    Returns:
      The final metrics: `steps`, `train_loss` (mean over the last `--log-every`
      steps), `val_loss` (nats per character), `val_bits_per_char`, `wall_time_s`,
      `train_time_s`, `history` (the logged entries), `prompt`, `sample` (the
      `--sample-len` sampled characters, without the prompt) and `config`.

    Raises:
      SystemExit: bad arguments (status 2, with a usage message on stderr), or `--help`.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    text = _load(parser, args)
    return run(args, text)


if __name__ == "__main__":
    main(sys.argv[1:])
