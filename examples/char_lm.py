"""Train a character-level LSTM language model on Tiny Shakespeare and sample text from it.

    character ids (T, batch) -> embedding (T, batch, E) -> jr.lstm (T, batch, H)
                             -> jr.dense head (T, batch, V) logits over the vocabulary

It trains on random windows of the first 90% of the text, reports the cross-entropy on
the last 10% in bits per character, and continues `--prompt` with `jr.generate`. `--out
DIR` keeps checkpoints (`--resume` goes on bit for bit), metrics.json and loss_curve.png.

    python examples/char_lm.py                      # 33 to 62 s on two CPU cores
    python examples/char_lm.py --steps 3000 --out runs/shakespeare
    python examples/char_lm.py --steps 6000 --out runs/shakespeare --resume
    XLA_FLAGS=--xla_force_host_platform_device_count=8 python examples/char_lm.py --data-parallel
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shlex
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

import jaxrnn as jr

DEFAULT_DATA = Path(__file__).resolve().parent / "data" / "tiny_shakespeare.txt"
EVAL_CHUNK = 256  # validation windows per forward pass


@functools.partial(jax.jit, static_argnames=("batch_size", "seq_len"))
def random_windows(key: jax.Array, data: jax.Array, batch_size: int, seq_len: int) -> jax.Array:
    """`batch_size` random windows of `seq_len + 1` consecutive ids of `data (N,)`: `(T + 1, B)`.

    >>> w = random_windows(jax.random.key(0), jnp.arange(50), batch_size=3, seq_len=4)
    >>> w.shape, bool(jnp.all(w[1:] - w[:-1] == 1))
    ((5, 3), True)
    """
    starts = jax.random.randint(key, (batch_size,), 0, data.shape[0] - seq_len)
    return data[jnp.arange(seq_len + 1)[:, None] + starts[None, :]]


def validation_windows(ids: np.ndarray, seq_len: int) -> np.ndarray:
    """`ids (N,)` cut into windows `(n, seq_len + 1)` that share their boundary character.

    >>> validation_windows(np.arange(10), seq_len=4)
    array([[0, 1, 2, 3, 4],
           [4, 5, 6, 7, 8]])
    """
    starts = np.arange((len(ids) - 1) // seq_len) * seq_len
    return ids[starts[:, None] + np.arange(seq_len + 1)[None, :]]


def init_params(key: jax.Array, cell: jr.Cell, vocab_size: int, embed_size: int) -> dict:
    """`{"embed": (V, E), "lstm": the cell's params, "head": {"w": (H, V), "b": (V,)}}`.

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


def readout(params: dict, hs: jax.Array) -> jax.Array:
    """Logits `(..., V)` from LSTM outputs `hs (..., H)`."""
    return jr.dense(params["head"]["b"].shape[0]).apply(params["head"], hs)


def forward(cell: jr.Cell, params: dict, tokens: jax.Array) -> jax.Array:
    """Logits `(T, *batch, V)` of the character after each of `tokens (T, *batch)`."""
    _, hs = jr.unroll(cell, params["lstm"], params["embed"][tokens])
    return readout(params, hs)


@functools.partial(jax.jit, static_argnames="cell")
def loss_fn(cell: jr.Cell, params: dict, windows: jax.Array, key=None) -> jax.Array:
    """Mean next-character cross-entropy in nats over `windows (T + 1, *batch)`."""
    return jr.sequence_softmax_cross_entropy(forward(cell, params, windows[:-1]), windows[1:])


def evaluate(params: dict, cell: jr.Cell, windows: np.ndarray) -> float:
    """The cross-entropy per character of `windows (n, T + 1)`, `EVAL_CHUNK` windows at a time."""
    chunks = [windows[i : i + EVAL_CHUNK] for i in range(0, len(windows), EVAL_CHUNK)]
    return sum(float(loss_fn(cell, params, c.T)) * len(c) for c in chunks) / len(windows)


@functools.partial(jax.jit, static_argnames=("cell", "length", "top_k"))
def sample(params, cell, prompt, key, temperature, length: int, top_k: int | None = None):
    """`length` ids `(L,)` drawn after `prompt (P,)`, each from `softmax(logits / temperature)`.

    >>> p = init_params(jax.random.key(0), jr.lstm(8), vocab_size=5, embed_size=3)
    >>> sample(p, jr.lstm(8), jnp.array([1, 2]), jax.random.key(1), 1.0, length=10).shape
    (10,)
    """
    embed = params["embed"]
    carry, _ = jr.unroll(cell, params["lstm"], embed[prompt[:-1]])
    options = {"key": key, "temperature": temperature, "top_k": top_k}
    head, first = functools.partial(readout, params), embed[prompt[-1]]
    _, ids, _ = jr.generate(
        cell, params["lstm"], carry, first, length, readout=head, embed=embed.__getitem__, **options
    )
    return ids


def positive_int(text: str) -> int:
    if int(text) <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return int(text)


def positive_float(text: str) -> float:
    if not 0 < float(text) < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return float(text)


parser = argparse.ArgumentParser(
    "char_lm.py",
    formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    description=__doc__.split("\n\n")[0],
)
parser.add_argument("--data", default=str(DEFAULT_DATA), help="UTF-8 text file to model")
parser.add_argument("--seq-len", type=positive_int, default=64, help="characters per window")
parser.add_argument("--batch-size", type=positive_int, default=32, help="windows per step")
parser.add_argument("--hidden", type=positive_int, default=256, help="LSTM hidden size")
parser.add_argument("--embed", type=positive_int, default=64, help="embedding size")
parser.add_argument("--steps", type=positive_int, default=1000, help="steps in all, if resumed")
parser.add_argument("--lr", type=positive_float, default=3e-3, help="Adam's learning rate")
parser.add_argument("--clip", type=positive_float, default=1.0, help="gradient norm clip")
parser.add_argument("--seed", type=int, default=0, help="seed of init, batches and sample")
parser.add_argument("--log-every", type=positive_int, default=100, help="steps between logs")
parser.add_argument("--prompt", default="GLOUCESTER:\n", help="text the sample continues")
parser.add_argument("--sample-len", type=positive_int, default=400, help="characters to sample")
parser.add_argument("--temperature", type=positive_float, default=0.8, help="of the sampling")
parser.add_argument("--top-k", type=positive_int, help="sample among the K likeliest only")
parser.add_argument("--out", type=Path, help="write checkpoints, metrics.json and a plot here")
parser.add_argument("--checkpoint-every", type=positive_int, default=250, help="with --out")
parser.add_argument("--resume", action="store_true", help="continue the run in --out")
parser.add_argument("--data-parallel", action="store_true", help="split batches over devices")
MODEL_OPTIONS = ("data", "seq_len", "batch_size", "hidden", "embed", "lr", "clip", "seed")
NOTHING_SAVED = "nothing was saved (--out DIR keeps checkpoints that --resume continues)"


def main(argv: list[str] | None = None) -> dict:
    """Train, validate and sample as `argv` says; returns the metrics it writes to metrics.json."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args, start = parser.parse_args(argv), time.perf_counter()
    try:
        text = Path(args.data).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        parser.error(f"--data {args.data!r}: cannot read it as UTF-8 text ({e})")
    vocab = "".join(sorted(set(text)))  # a character's id is its index
    if not args.prompt or set(args.prompt) - set(vocab) or (args.top_k or 0) > len(vocab):
        parser.error(f"--prompt needs characters of --data, --top-k at most {len(vocab)}")
    ids = np.array([vocab.index(c) for c in text], np.int32)
    cut = round(len(ids) * 0.9)  # the first 90% to train on, the last 10% to validate on
    train_ids, val_windows = jnp.asarray(ids[:cut]), validation_windows(ids[cut:], args.seq_len)
    if min(cut, len(ids) - cut) <= args.seq_len:
        parser.error(f"--data has {len(text)} characters, too few for --seq-len {args.seq_len}")
    print(f"{len(text):,} characters, {len(vocab)} distinct; {len(ids) - cut:,} to validate")

    cell = jr.lstm(args.hidden)
    init_key, data_key, train_key, sample_key = jax.random.split(jax.random.key(args.seed), 4)
    params = init_params(init_key, cell, len(vocab), args.embed)
    optimizer = optax.chain(optax.clip_by_global_norm(args.clip), optax.adam(args.lr))
    mesh = Mesh(jax.devices(), ("batch",)) if args.data_parallel else None
    if mesh is not None and args.batch_size % mesh.size:
        parser.error(f"--batch-size {args.batch_size} does not split across {mesh.size} devices")
    loss = functools.partial(loss_fn, cell)
    try:
        result = jr.train.fit(
            jr.train.init_state(params, optimizer, train_key),
            jr.train.make_train_step(loss, optimizer, mesh=mesh, batch_axis=1),
            lambda step: random_windows(
                jax.random.fold_in(data_key, step), train_ids, args.batch_size, args.seq_len
            ),
            steps=args.steps,
            log_every=args.log_every,
            evaluate=lambda params: {"val_loss": evaluate(params, cell, val_windows)},
            eval_every=args.log_every * math.ceil(args.steps / (4 * args.log_every)),
            checkpoint_dir=args.out and args.out / "checkpoints",
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            config={name: getattr(args, name) for name in MODEL_OPTIONS},
        )
    except jr.train.ResumeError as e:  # refused before the first step: --out, --resume, --steps
        below = f"--steps {args.steps} is below {e.step}, the step of the checkpoint in --out"
        parser.error(below if e.step else str(e))
    except jr.train.NonFiniteLossError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        sys.exit(1)
    except jr.train.TrainingInterrupted as e:  # Ctrl-C; fit saved a checkpoint if it had --out
        again = argv if "--resume" in argv else [*argv, "--resume"]
        hint = f"resume with: {shlex.join(['python', sys.argv[0], *again])}"
        print(f"\n{e}\n{hint if e.checkpoint else NOTHING_SAVED}", file=sys.stderr)
        sys.exit(130)

    params = result.state.params
    val_loss = evaluate(params, cell, val_windows)
    prompt = jnp.array([vocab.index(c) for c in args.prompt])
    drawn = sample(params, cell, prompt, sample_key, args.temperature, args.sample_len, args.top_k)
    sampled = "".join(vocab[i] for i in np.asarray(drawn))
    print(f"\nvalidation: {val_loss:.4f} nats = {val_loss / math.log(2):.4f} bits per character")
    print(f"\n--- sample at temperature {args.temperature} ---\n{args.prompt}{sampled}\n---")
    metrics = {
        "steps": int(result.state.step),
        "train_loss": result.history[-1]["train_loss"],
        "val_loss": val_loss,
        "val_bits_per_char": val_loss / math.log(2),
        "sample": sampled,
        "wall_time_s": time.perf_counter() - start,
        "resumed_from_step": result.resumed_from,
        "checkpoint": result.checkpoint,
        "history": result.history,
        "config": vars(args),
    }
    if args.out is not None:
        (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
        from matplotlib.figure import Figure

        ax = Figure(figsize=(7, 4)).subplots()
        steps = np.arange(1, len(result.losses) + 1)
        ax.plot(steps, result.losses, lw=0.5, label="training batches")
        validated = [(h["step"], h["val_loss"]) for h in result.history if "val_loss" in h]
        ax.plot(*zip(*validated, strict=True), "o-", label="validation text")
        ax.set(xlabel="step", ylabel="cross-entropy (nats per character)")
        ax.set(title=f"LSTM {args.hidden} on {Path(args.data).name}")
        ax.legend()
        ax.figure.savefig(args.out / "loss_curve.png")
    return metrics


if __name__ == "__main__":
    main()
