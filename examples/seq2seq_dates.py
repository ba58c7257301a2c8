"""Encoder-decoder: translate human-written dates into ISO dates, character by character.

"3rd of May 1997", "05/03/97" and "Saturday 3 May 1997" all become "1997-05-03":

    source ids (S, batch) -> embedding -> GRU forward, GRU backward (reverse=True, lengths)
    context = [h_fwd, h_bwd] (batch, 2H); decoder carry = tanh(dense(context))
    decoder GRU over [embed(previous ISO character), context] -> dense head -> 11 logits

It trains with teacher forcing (`jr.shift_right`), translates with `jr.generate(greedy=True)`
and counts held-out dates translated exactly. `--out DIR` keeps checkpoints (`--resume` goes
on bit for bit), metrics.json and training.png.

    python examples/seq2seq_dates.py                # 46 to 82 s on two CPU cores
    python examples/seq2seq_dates.py --steps 3000 --out runs/dates --resume  # again: goes on
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import random
import shlex
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxrnn as jr

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FORMATS = (
    "{d}{th} of {Month} {Y}",  # 3rd of May 1997
    "{mm}/{dd}/{yy}",  # 05/03/97
    "{Month} {d}, {Y}",  # May 3, 1997
    "{Weekday} {d} {Month} {Y}",  # Saturday 3 May 1997
    "{Wkd}, {d} {Mon} {Y}",  # Sat, 3 May 1997
    "{d} {Mon} {yy}",  # 3 May 97
    "{dd}.{mm}.{Y}",  # 03.05.1997
    "{Mon} {d}{th} {Y}",  # May 3rd 1997
    "{d} {month} {Y}",  # 3 may 1997
    "{Weekday}, {Month} {d}{th}, {Y}",  # Saturday, May 3rd, 1997
    "{Y}/{m}/{d}",  # 1997/5/3
    "{dd} {MON} {Y}",  # 03 MAY 1997
)
FIRST_DATE, LAST_DATE = datetime.date(1970, 1, 1), datetime.date(2029, 12, 31)  # as %y reads
NAMES = "".join(MONTHS + WEEKDAYS)
SOURCE_VOCAB = "".join(sorted(set(NAMES + NAMES.lower() + NAMES.upper() + " ,./0123456789")))
TARGET_VOCAB = "0123456789-"  # the decoder's classes; START, one past them, starts it
START = len(TARGET_VOCAB)
HEAD = jr.dense(len(TARGET_VOCAB), kernel_init=jax.nn.initializers.glorot_uniform())


def render_date(date: datetime.date, fmt: str) -> str:
    """`date` written in the format `fmt`, one of `FORMATS`, with English names."""
    month, weekday, day = MONTHS[date.month - 1], WEEKDAYS[date.weekday()], date.day
    return fmt.format(
        d=day, dd=f"{day:02d}", m=date.month, mm=f"{date.month:02d}",
        th="th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th"),
        Month=month, Mon=month[:3], MON=month[:3].upper(), month=month.lower(),
        Weekday=weekday, Wkd=weekday[:3], Y=date.year, yy=f"{date.year % 100:02d}",
    )  # fmt: skip


def make_splits(num_train: int, num_test: int, seed: int) -> tuple[list, list]:
    """`(train, test)` lists of random `(source, ISO target)` pairs; no source is in both."""
    rng, pairs, days = random.Random(seed), {}, (LAST_DATE - FIRST_DATE).days
    while len(pairs) < num_train + num_test:
        date = FIRST_DATE + datetime.timedelta(days=rng.randrange(days + 1))
        pairs.setdefault(render_date(date, rng.choice(FORMATS)), date.isoformat())
    items = list(pairs.items())
    rng.shuffle(items)
    return items[:num_train], items[num_train:]


def encode_sources(sources: list[str], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids `(S, N)` of `sources` over `SOURCE_VOCAB`, padded with spaces (id 0); lengths `(N,)`."""
    ids = [[SOURCE_VOCAB.index(c) for c in source.ljust(max_len)] for source in sources]
    return np.array(ids, np.int32).T, np.array([len(s) for s in sources], np.int32)


def init_params(key: jax.Array, encoder: jr.Cell, decoder: jr.Cell, embed_size: int) -> dict:
    """Both encoder directions, the bridge to the decoder's carry, the decoder and its head."""
    keys, glorot = jax.random.split(key, 7), jax.nn.initializers.glorot_uniform()
    context = 2 * encoder.hidden_size
    return {
        "source_embed": jax.random.normal(keys[0], (len(SOURCE_VOCAB), embed_size)),
        "forward": encoder.init(keys[1], input_size=embed_size),
        "backward": encoder.init(keys[2], input_size=embed_size),
        "bridge": jr.dense(decoder.hidden_size, kernel_init=glorot).init(keys[3], context),
        "target_embed": jax.random.normal(keys[4], (len(TARGET_VOCAB) + 1, embed_size)),
        "decoder": decoder.init(keys[5], input_size=embed_size + context),
        "head": HEAD.init(keys[6], decoder.hidden_size),
    }


def encode(encoder: jr.Cell, params: dict, ids: jax.Array, lengths: jax.Array):
    """`(context (N, 2H), decoder carry (N, D))` of padded sources `ids (S, N)`."""
    xs = params["source_embed"][ids]
    h_fwd, _ = jr.unroll(encoder, params["forward"], xs, lengths=lengths)
    # Reversed with lengths, each source runs from its last valid step to step 0.
    h_bwd, _ = jr.unroll(encoder, params["backward"], xs, lengths=lengths, reverse=True)
    context = jnp.concatenate([h_fwd, h_bwd], axis=-1)
    return context, jnp.tanh(context @ params["bridge"]["w"] + params["bridge"]["b"][None])


def decoder_input(params: dict, tokens: jax.Array, context: jax.Array) -> jax.Array:
    """`[embed(tokens), context]` for tokens `(*lead, N)` and context `(*lead, N, C)`."""
    return jnp.concatenate([params["target_embed"][tokens], context], axis=-1)


def teacher_forced_logits(encoder, decoder, params, ids, lengths, targets) -> jax.Array:
    """Logits `(10, N, 11)` when the decoder reads the true previous characters of `targets`."""
    context, carry = encode(encoder, params, ids, lengths)
    context = jnp.broadcast_to(context, targets.shape + context.shape[-1:])  # at every step
    inputs = decoder_input(params, jr.shift_right(targets, START), context)
    _, hs = jr.unroll(decoder, params["decoder"], inputs, carry)
    return HEAD.apply(params["head"], hs)


def loss_fn(encoder: jr.Cell, decoder: jr.Cell, params: dict, batch: tuple, key=None):
    """Mean cross-entropy per target character of `batch = (ids, lengths, targets)`."""
    logits = teacher_forced_logits(encoder, decoder, params, *batch)
    return jr.sequence_softmax_cross_entropy(logits, batch[2])


@functools.partial(jax.jit, static_argnames=("encoder", "decoder"))
def translate_ids(encoder, decoder, params, ids, lengths) -> jax.Array:
    """Greedy translations `(10, N)` of padded sources `ids (S, N)` with `lengths (N,)`."""
    context, carry = encode(encoder, params, ids, lengths)
    start = decoder_input(params, jnp.full(lengths.shape, START, jnp.int32), context)
    head = functools.partial(HEAD.apply, params["head"])
    embed = functools.partial(decoder_input, params, context=context)
    _, tokens, _ = jr.generate(
        decoder, params["decoder"], carry, start, 10, readout=head, embed=embed, greedy=True
    )
    return tokens


def positive_int(text: str) -> int:
    if int(text) <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return int(text)


parser = argparse.ArgumentParser("seq2seq_dates.py", description=__doc__.split("\n\n")[0])
parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
parser.add_argument("--train-size", type=positive_int, default=20000, help="training pairs")
parser.add_argument("--test-size", type=positive_int, default=2000, help="held-out pairs")
parser.add_argument("--batch-size", type=positive_int, default=64, help="pairs per step")
parser.add_argument("--hidden", type=positive_int, default=128, help="GRU hidden size")
parser.add_argument("--steps", type=positive_int, default=2000, help="steps in all, if resumed")
parser.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate")
parser.add_argument("--seed", type=int, default=0, help="seed of the data, init and batches")
parser.add_argument("--log-every", type=positive_int, default=250, help="log and evaluate")
parser.add_argument("--examples", type=positive_int, default=8, help="translations shown")
parser.add_argument("--out", type=Path, help="write checkpoints, metrics.json and a plot")
parser.add_argument("--resume", action="store_true", help="continue the run in --out")
MODEL_OPTIONS = ("train_size", "test_size", "batch_size", "hidden", "lr", "seed")
NOTHING_SAVED = "nothing was saved (--out DIR keeps checkpoints that --resume continues)"


def main(argv: list[str] | None = None) -> dict:
    """Train, evaluate and translate as `argv` says; returns the metrics of metrics.json."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    train_pairs, test_pairs = make_splits(args.train_size, args.test_size, args.seed)
    max_len = max(len(s) for s, _ in train_pairs + test_pairs)
    targets = np.array([[TARGET_VOCAB.index(c) for c in t] for _, t in train_pairs], np.int32).T
    data, n = (*encode_sources([s for s, _ in train_pairs], max_len), targets), len(targets[0])
    test_ids, test_lengths = encode_sources([s for s, _ in test_pairs], max_len)
    cell = jr.gru(args.hidden)  # the encoder's two directions and the decoder
    init_key, data_key, train_key = jax.random.split(jax.random.key(args.seed), 3)
    params = init_params(init_key, cell, cell, embed_size=32)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(args.lr))

    def batch(step: int) -> tuple:  # random training pairs, a function of the step alone
        pick = jax.random.randint(jax.random.fold_in(data_key, step), (args.batch_size,), 0, n)
        return data[0][:, pick], data[1][pick], data[2][:, pick]

    def translate_test(params: dict) -> list[str]:
        tokens = np.asarray(translate_ids(cell, cell, params, test_ids, test_lengths)).T
        return ["".join(TARGET_VOCAB[i] for i in row) for row in tokens]

    def exact_match(params: dict) -> dict[str, float]:
        right = [p == t for p, (_, t) in zip(translate_test(params), test_pairs, strict=True)]
        return {"test_accuracy": float(np.mean(right))}

    try:
        result = jr.train.fit(
            jr.train.init_state(params, optimizer, train_key),
            jr.train.make_train_step(functools.partial(loss_fn, cell, cell), optimizer),
            batch,
            steps=args.steps,
            log_every=args.log_every,
            evaluate=exact_match,
            eval_every=args.log_every,
            checkpoint_dir=args.out and args.out / "checkpoints",
            checkpoint_every=500,
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

    accuracy = exact_match(result.state.params)["test_accuracy"]
    print(f"\nheld-out exact match: {accuracy:.4f} of {len(test_pairs)} dates")
    translated = zip(test_pairs, translate_test(result.state.params), strict=True)
    rows = [{"source": s, "target": t, "prediction": p} for (s, t), p in translated]
    wrong = [e for e in rows[args.examples :] if e["prediction"] != e["target"]]
    examples = rows[: args.examples]  # the first held-out dates, then up to as many mistakes
    for e in examples + wrong[: args.examples]:
        mark = "" if e["prediction"] == e["target"] else "  <- wrong"
        print(f"  {e['source']!r:>34} -> {e['prediction']}  (true: {e['target']}){mark}")
    metrics = {"steps": int(result.state.step), "train_loss": result.history[-1]["train_loss"]}
    metrics.update(test_accuracy=accuracy, examples=examples, resumed_from_step=result.resumed_from)
    metrics.update(checkpoint=result.checkpoint, history=result.history, config=vars(args))
    if args.out is not None:
        (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
        from matplotlib.figure import Figure

        loss_ax, match_ax = Figure(figsize=(9, 3.6), layout="tight").subplots(1, 2)
        loss_ax.plot(np.arange(1, len(result.losses) + 1), result.losses, lw=0.5)
        loss_ax.set(xlabel="step", ylabel="nats per character", yscale="log", title="training loss")
        loss_ax.yaxis.set(major_formatter="{x:g}", minor_formatter="")  # 0.01, not 10⁻²
        tested = [(h["step"], h["test_accuracy"]) for h in result.history if "test_accuracy" in h]
        match_ax.plot(*zip(*tested, strict=True), "o-", color="C1")
        match_ax.set(xlabel="step", ylabel="dates translated exactly", ylim=(0, 1.02))
        match_ax.set(title=f"{len(test_pairs)} held-out dates, greedy decoding")
        match_ax.figure.savefig(args.out / "training.png")
    return metrics


if __name__ == "__main__":
    main()
