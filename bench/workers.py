"""The implementations that `bench/run.py` compares, one framework per worker process.

Every worker builds the same weights and data from a NumPy seed (`make_data`), so the
loss and gradients of all implementations can be compared across processes. Weights are
kept in jaxrnn's layout (`x @ w_x`, fused gates in PyTorch's order, `b` the sum of the
input and recurrent biases); each framework converts them to its own layout, and its
gradients back. The model: the recurrent layer, then a dense head `H -> O` at every step
and the mean softmax cross-entropy against integer targets.

This module imports NumPy only; each builder imports its framework, so a PyTorch worker
never loads JAX (their thread pools would fight over the cores).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np


class Workload(NamedTuple):
    name: str
    cell: str  # "rnn", "lstm" or "gru"
    batch: int
    steps: int
    input_size: int
    hidden_size: int
    output_size: int
    one_hot: bool = False

    @property
    def gates(self) -> int:
        return {"rnn": 1, "lstm": 4, "gru": 3}[self.cell]

    def scaled(self, scale: float) -> Workload:
        def size(n: int) -> int:
            return max(2, round(n * scale))

        return self._replace(
            batch=size(self.batch),
            steps=size(self.steps),
            input_size=size(self.input_size),
            hidden_size=size(self.hidden_size),
            output_size=size(self.output_size),
        )

    def flops(self, mode: str) -> float:
        """Matmul FLOPs of one step: forward, plus two GEMMs per matmul for training.

        The input gradient `dL/dx` is not computed, so training is three times the
        forward matmuls minus the input-gradient GEMM. Elementwise work is not counted.
        """
        rows = self.batch * self.steps
        gh = self.gates * self.hidden_size
        x_mm = 2 * rows * self.input_size * gh
        h_mm = 2 * rows * self.hidden_size * gh
        head = 2 * rows * self.hidden_size * self.output_size
        forward = x_mm + h_mm + head
        return forward if mode == "infer" else 3 * forward - x_mm

    def describe(self) -> str:
        return (
            f"{self.cell} B={self.batch} T={self.steps} I={self.input_size}"
            f"{' (one-hot)' if self.one_hot else ''} H={self.hidden_size} O={self.output_size}"
        )


WORKLOADS = {
    w.name: w
    for w in [
        Workload("rnn_small", "rnn", 32, 100, 64, 128, 64),
        Workload("lstm_medium", "lstm", 64, 200, 128, 256, 128),
        Workload("gru_medium", "gru", 64, 200, 128, 256, 128),
        Workload("charlm", "lstm", 64, 100, 65, 512, 65, one_hot=True),
        Workload("lstm_long", "lstm", 8, 2000, 32, 64, 32),
    ]
}

PARAM_KEYS = ("w_x", "w_h", "b", "b_hn", "head_w", "head_b")

HUGEPAGES_TUNABLE = "glibc.malloc.hugetlb=1"
"""glibc >= 2.35: `madvise(MADV_HUGEPAGE)` on what malloc maps, so fresh memory faults in
2 MiB pages instead of 4 KiB ones. glibc reads it when a process starts."""


def with_hugepages(env: dict[str, str]) -> dict[str, str]:
    """A copy of the environment `env` with `HUGEPAGES_TUNABLE` added to `GLIBC_TUNABLES`."""
    tunables = [t for t in (env.get("GLIBC_TUNABLES"), HUGEPAGES_TUNABLE) if t]
    return {**env, "GLIBC_TUNABLES": ":".join(tunables)}


def make_data(w: Workload, seed: int) -> dict[str, np.ndarray]:
    """Weights (jaxrnn layout), inputs `(T, B, I)` and targets `(T, B)`, from a seed."""
    rng = np.random.default_rng(seed)
    H, gh = w.hidden_size, w.gates * w.hidden_size
    s = 1 / math.sqrt(H)

    def uniform(*shape: int) -> np.ndarray:
        return rng.uniform(-s, s, shape).astype(np.float32)

    data = {"w_x": uniform(w.input_size, gh), "w_h": uniform(H, gh), "b": uniform(gh)}
    if w.cell == "gru":
        data["b_hn"] = uniform(H)
    data["head_w"] = uniform(H, w.output_size)
    data["head_b"] = uniform(w.output_size)
    shape = (w.steps, w.batch)
    if w.one_hot:
        data["xs"] = np.eye(w.input_size, dtype=np.float32)[rng.integers(0, w.input_size, shape)]
    else:
        data["xs"] = rng.standard_normal((*shape, w.input_size)).astype(np.float32)
    data["ys"] = rng.integers(0, w.output_size, shape).astype(np.int32)
    return data


class Impl(NamedTuple):
    """One implementation in a worker: timed callables per mode and its gradients."""

    name: str
    calls: dict[str, Callable[[], Any]]  # mode -> a call that blocks until done
    compile_s: dict[str, float | None]  # mode -> compile (JAX) seconds; None for eager
    grads: dict[str, np.ndarray]  # "loss" and PARAM_KEYS, jaxrnn layout, float64


def _time_first(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --- JAX implementations ---------------------------------------------------------------


def _jax_setup() -> Any:
    import jax

    jax.config.update("jax_platforms", "cpu")
    return jax


def _jax_ce(logits: Any, ys: Any) -> Any:
    import jax
    import jax.numpy as jnp

    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, ys[..., None], axis=-1))


def _jax_impl(
    name: str,
    forward: Callable[[Any, Any], Any],
    params: Any,
    data: dict[str, np.ndarray],
    modes: list[str],
    to_jaxrnn: Callable[[Any], dict[str, Any]],
    loss_fn: Callable[[Any, Any], Any] | None = None,
) -> Impl:
    """Compile `forward(params, xs) -> logits` as a train and an inference step.

    `to_jaxrnn(grads)` maps a gradient tree to jaxrnn's layout (the PARAM_KEYS).
    """
    jax = _jax_setup()
    import jax.numpy as jnp

    loss_fn = loss_fn or _jax_ce
    xs, ys = jnp.asarray(data["xs"]), jnp.asarray(data["ys"])

    def loss(p: Any, xs: Any, ys: Any) -> Any:
        return loss_fn(forward(p, xs), ys)

    calls, compile_s = {}, {}
    train = jax.value_and_grad(loss)
    start = time.perf_counter()
    train_c = jax.jit(train).lower(params, xs, ys).compile()
    compile_s["train"] = time.perf_counter() - start
    value, grads = train_c(params, xs, ys)
    converted = {k: np.asarray(v, np.float64) for k, v in to_jaxrnn(grads).items()}
    converted["loss"] = np.asarray(value, np.float64)
    if "train" in modes:
        calls["train"] = lambda: jax.block_until_ready(train_c(params, xs, ys))
    if "infer" in modes:
        start = time.perf_counter()
        infer_c = jax.jit(forward).lower(params, xs).compile()
        compile_s["infer"] = time.perf_counter() - start
        calls["infer"] = lambda: jax.block_until_ready(infer_c(params, xs))
    return Impl(name, calls, compile_s, converted)


def _jaxrnn_cell(w: Workload) -> Any:
    import jaxrnn as jr

    return {"rnn": jr.rnn, "lstm": jr.lstm, "gru": jr.gru}[w.cell](w.hidden_size)


def _cell_params(data: dict[str, np.ndarray]) -> dict[str, Any]:
    import jax.numpy as jnp

    return {k: jnp.asarray(data[k]) for k in ("w_x", "w_h", "b", "b_hn") if k in data}


def _with_head(cell_grads: dict[str, Any], head_grads: dict[str, Any]) -> dict[str, Any]:
    return {**cell_grads, "head_w": head_grads["w"], "head_b": head_grads["b"]}


def _head_params(data: dict[str, np.ndarray]) -> dict[str, Any]:
    import jax.numpy as jnp

    return {"w": jnp.asarray(data["head_w"]), "b": jnp.asarray(data["head_b"])}


def _apply_head(head: dict[str, Any], hs: Any) -> Any:
    return hs @ head["w"] + head["b"].reshape((1,) * (hs.ndim - 1) + head["b"].shape)


def jaxrnn_forward(w: Workload, grad: str) -> Callable[[Any, Any], Any]:
    """`forward(params, xs) -> logits` of the jaxrnn model: `jr.unroll`, then `jr.dense`."""
    import jaxrnn as jr

    cell, head = _jaxrnn_cell(w), jr.dense(w.output_size)

    def forward(p: Any, xs: Any) -> Any:
        _, hs = jr.unroll(cell, p["cell"], xs, grad=grad)
        return head.apply(p["head"], hs)

    return forward


def build_jaxrnn(w: Workload, data: dict[str, np.ndarray], modes: list[str]) -> list[Impl]:
    """jaxrnn: `jr.unroll` with `grad="bptt"` and `grad="autodiff"`, `jr.dense`, its loss."""
    _jax_setup()
    import jaxrnn as jr

    params = {"cell": _cell_params(data), "head": _head_params(data)}
    impls = []
    for grad in ("bptt", "autodiff"):
        impls.append(
            _jax_impl(
                f"jaxrnn {grad}",
                jaxrnn_forward(w, grad),
                params,
                data,
                modes,
                lambda g: _with_head(g["cell"], g["head"]),
                jr.sequence_softmax_cross_entropy,
            )
        )
    return impls


def scan_forward(cell: str) -> Callable[[Any, Any], Any]:
    """A plain fused-gate `lax.scan` of the cell, the input matmul inside the loop."""
    import jax
    import jax.numpy as jnp

    def step(p: Any, carry: Any, x: Any) -> tuple[Any, Any]:
        if cell == "rnn":
            h = jnp.tanh(x @ p["w_x"] + carry @ p["w_h"] + p["b"])
            return h, h
        if cell == "lstm":
            h, c = carry
            i, f, g, o = jnp.split(x @ p["w_x"] + h @ p["w_h"] + p["b"], 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h
        a_r, a_z, a_n = jnp.split(x @ p["w_x"] + p["b"], 3, axis=-1)
        u_r, u_z, u_n = jnp.split(carry @ p["w_h"], 3, axis=-1)
        r, z = jax.nn.sigmoid(a_r + u_r), jax.nn.sigmoid(a_z + u_z)
        n = jnp.tanh(a_n + r * (u_n + p["b_hn"]))
        h = n + z * (carry - n)
        return h, h

    def forward(p: Any, xs: Any) -> Any:
        batch, hidden = xs.shape[1], p["cell"]["w_h"].shape[0]
        h0 = jnp.zeros((batch, hidden), xs.dtype)
        carry = (h0, h0) if cell == "lstm" else h0
        _, hs = jax.lax.scan(lambda c, x: step(p["cell"], c, x), carry, xs)
        return _apply_head(p["head"], hs)

    return forward


def scan_forward_feature_major(cell: str) -> Callable[[Any, Any], Any]:
    """`scan_forward` with the state feature-major: `z^T = W_x^T x^T + W_h^T h^T`, `(G*H, B)`.

    The same math as `scan_forward`; only the layout of the state and the gates differs:
    each gate is a block of rows, not of columns. The outputs are transposed back at the
    end.
    """
    import jax
    import jax.numpy as jnp

    # The weights are transposed once, before the loop: `w_x` is `(G*H, I)` here.
    def mm_x(w: Any, x: Any) -> Any:  # w (N, I), x (B, I) -> (N, B)
        return jax.lax.dot_general(w, x, (((1,), (1,)), ((), ())))

    def step(p: Any, carry: Any, x: Any) -> tuple[Any, Any]:
        b = p["b"][:, None]
        if cell == "rnn":
            h = jnp.tanh(mm_x(p["w_x"], x) + p["w_h"] @ carry + b)
            return h, h
        if cell == "lstm":
            h, c = carry
            i, f, g, o = jnp.split(mm_x(p["w_x"], x) + p["w_h"] @ h + b, 4, axis=0)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h
        a_r, a_z, a_n = jnp.split(mm_x(p["w_x"], x) + b, 3, axis=0)
        u_r, u_z, u_n = jnp.split(p["w_h"] @ carry, 3, axis=0)
        r, z = jax.nn.sigmoid(a_r + u_r), jax.nn.sigmoid(a_z + u_z)
        n = jnp.tanh(a_n + r * (u_n + p["b_hn"][:, None]))
        h = n + z * (carry - n)
        return h, h

    def forward(p: Any, xs: Any) -> Any:
        batch, hidden = xs.shape[1], p["cell"]["w_h"].shape[0]
        h0 = jnp.zeros((hidden, batch), xs.dtype)
        carry = (h0, h0) if cell == "lstm" else h0
        transposed = {**p["cell"], "w_x": p["cell"]["w_x"].T, "w_h": p["cell"]["w_h"].T}
        _, hs = jax.lax.scan(lambda c, x: step(transposed, c, x), carry, xs)
        return _apply_head(p["head"], jnp.swapaxes(hs, 1, 2))

    return forward


def build_scan(w: Workload, data: dict[str, np.ndarray], modes: list[str]) -> list[Impl]:
    """Hand-written fused-gate `lax.scan`s, batch-major and feature-major; autodiff."""
    _jax_setup()
    params = {"cell": _cell_params(data), "head": _head_params(data)}
    to_jaxrnn = lambda g: _with_head(g["cell"], g["head"])  # noqa: E731
    return [
        _jax_impl("hand-written scan", scan_forward(w.cell), params, data, modes, to_jaxrnn),
        _jax_impl(
            "hand-written scan, feature-major",
            scan_forward_feature_major(w.cell),
            params,
            data,
            modes,
            to_jaxrnn,
        ),
    ]


_FLAX_CELLS = {
    "rnn": ["SimpleCell"],
    "lstm": ["LSTMCell", "OptimizedLSTMCell"],
    "gru": ["GRUCell"],
}


def build_flax(w: Workload, data: dict[str, np.ndarray], modes: list[str]) -> list[Impl]:
    """Flax linen `nn.RNN(cell, time_major=True)` for each of the matching Flax cells."""
    _jax_setup()
    import flax.linen as nn

    from jaxrnn import interop

    cell = _jaxrnn_cell(w)
    impls = []
    for kind in _FLAX_CELLS[w.cell]:
        rnn = nn.RNN(getattr(nn, kind)(features=w.hidden_size), time_major=True)
        flax_params = interop.to_flax(cell, _cell_params(data), f"linen.{kind}")
        params = {"cell": {"params": {"cell": flax_params}}, "head": _head_params(data)}

        def forward(p: Any, xs: Any, rnn: Any = rnn) -> Any:
            return _apply_head(p["head"], rnn.apply(p["cell"], xs))

        def to_jaxrnn(g: Any) -> dict[str, Any]:
            cell_grads = interop.from_flax(cell, g["cell"]["params"]["cell"])
            return _with_head(cell_grads, g["head"])

        impls.append(_jax_impl(f"flax {kind}", forward, params, data, modes, to_jaxrnn))
    return impls


def build_equinox(w: Workload, data: dict[str, np.ndarray], modes: list[str]) -> list[Impl]:
    """An Equinox cell, `jax.vmap` over the batch, under a hand-written `lax.scan`."""
    jax = _jax_setup()
    import equinox as eqx
    import jax.numpy as jnp

    from jaxrnn import interop

    if w.cell == "rnn":
        return []  # equinox.nn has no Elman cell
    cls = {"lstm": eqx.nn.LSTMCell, "gru": eqx.nn.GRUCell}[w.cell]
    cell = _jaxrnn_cell(w)
    like = cls(w.input_size, w.hidden_size, key=jax.random.key(0))
    params = {
        "cell": interop.to_equinox(cell, _cell_params(data), like),
        "head": _head_params(data),
    }

    def forward(p: Any, xs: Any) -> Any:
        h0 = jnp.zeros((xs.shape[1], w.hidden_size), xs.dtype)
        carry = (h0, h0) if w.cell == "lstm" else h0
        step = jax.vmap(p["cell"])

        def body(carry: Any, x: Any) -> tuple[Any, Any]:
            carry = step(x, carry)
            return carry, carry[0] if w.cell == "lstm" else carry

        _, hs = jax.lax.scan(body, carry, xs)
        return _apply_head(p["head"], hs)

    def to_jaxrnn(g: Any) -> dict[str, Any]:
        return _with_head(interop.from_equinox(cell, g["cell"]), g["head"])

    return [_jax_impl(f"equinox {cls.__name__}", forward, params, data, modes, to_jaxrnn)]


# --- PyTorch ---------------------------------------------------------------------------


def build_torch(w: Workload, data: dict[str, np.ndarray], modes: list[str]) -> list[Impl]:
    """PyTorch `nn.RNN/LSTM/GRU` (time-major) and `nn.Linear`, eager, on the CPU."""
    import torch

    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[w.cell]
    rnn, head = cls(w.input_size, w.hidden_size), torch.nn.Linear(w.hidden_size, w.output_size)
    H = w.hidden_size
    bias_hh = np.zeros(w.gates * H, np.float32)
    if w.cell == "gru":
        bias_hh[2 * H :] = data["b_hn"]
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(data["w_x"].T.copy()))
        rnn.weight_hh_l0.copy_(torch.from_numpy(data["w_h"].T.copy()))
        rnn.bias_ih_l0.copy_(torch.from_numpy(data["b"]))
        rnn.bias_hh_l0.copy_(torch.from_numpy(bias_hh))
        head.weight.copy_(torch.from_numpy(data["head_w"].T.copy()))
        head.bias.copy_(torch.from_numpy(data["head_b"]))
    xs = torch.from_numpy(data["xs"])
    ys = torch.from_numpy(data["ys"].astype(np.int64)).reshape(-1)
    parameters = [*rnn.parameters(), *head.parameters()]

    def train() -> torch.Tensor:
        for p in parameters:
            p.grad = None
        hs, _ = rnn(xs)
        loss = torch.nn.functional.cross_entropy(head(hs).reshape(-1, w.output_size), ys)
        loss.backward()
        return loss

    def infer() -> torch.Tensor:
        with torch.inference_mode():
            return head(rnn(xs)[0])

    loss = train()

    def grad(t: torch.Tensor) -> np.ndarray:
        return t.grad.numpy().astype(np.float64)

    grads = {
        "loss": np.float64(loss.item()),
        "w_x": grad(rnn.weight_ih_l0).T,
        "w_h": grad(rnn.weight_hh_l0).T,
        "b": grad(rnn.bias_ih_l0),
        "head_w": grad(head.weight).T,
        "head_b": grad(head.bias),
    }
    if w.cell == "gru":
        grads["b_hn"] = grad(rnn.bias_hh_l0)[2 * H :]
    calls = {"train": train, "infer": infer}
    calls = {m: calls[m] for m in modes}
    name = f"torch nn.{cls.__name__}"
    return [Impl(name, calls, dict.fromkeys(modes), grads)]


BUILDERS: dict[str, Callable[[Workload, dict[str, np.ndarray], list[str]], list[Impl]]] = {
    "jaxrnn": build_jaxrnn,
    "torch": build_torch,
    "flax": build_flax,
    "equinox": build_equinox,
    "scan": build_scan,
}


# --- matmul peak ------------------------------------------------------------------------


def matmul_peak(framework: str, size: int, runs: int) -> float:
    """The best float32 GFLOP/s of a `(size, size) @ (size, size)` matmul."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    if framework == "torch":
        import torch

        ta = torch.from_numpy(a)

        def call() -> Any:
            return ta @ ta
    else:
        jax = _jax_setup()
        ja = jax.numpy.asarray(a)
        mm = jax.jit(lambda x: x @ x).lower(ja).compile()

        def call() -> Any:
            return jax.block_until_ready(mm(ja))

    call()
    best = min(_time_first(call) for _ in range(runs))
    return 2 * size**3 / best / 1e9


# --- jaxrnn only: the T sweep and the memory of a train step -----------------------------


def _jaxrnn_train(
    w: Workload, data: dict[str, np.ndarray], chunks: bool = False, **unroll_kwargs: Any
) -> Any:
    """`(jitted value_and_grad, (params, xs, ys))` of the jaxrnn model.

    `chunks`: the head and the loss run through `jr.map_chunks`.
    """
    jax = _jax_setup()
    import jax.numpy as jnp

    import jaxrnn as jr

    cell, head = _jaxrnn_cell(w), jr.dense(w.output_size)
    params = {"cell": _cell_params(data), "head": _head_params(data)}

    def loss(p: Any, xs: Any, ys: Any) -> Any:
        _, hs = jr.unroll(cell, p["cell"], xs, **unroll_kwargs)
        if not chunks:
            return jr.sequence_softmax_cross_entropy(head.apply(p["head"], hs), ys)

        def step_losses(hs: Any, ys: Any) -> Any:
            logits = head.apply(p["head"], hs)
            return jr.sequence_softmax_cross_entropy(logits, ys, reduction="none")

        return jnp.mean(jr.map_chunks(step_losses, hs, ys))

    args = (params, jnp.asarray(data["xs"]), jnp.asarray(data["ys"]))
    return jax.jit(jax.value_and_grad(loss)), args


def _median_ms(call: Callable[[], Any], runs: int) -> tuple[float, float]:
    times = [1e3 * _time_first(call) for _ in range(runs)]
    return float(np.median(times)), min(times)


def sweep(w: Workload, steps: list[int], seed: int, runs: int) -> list[dict[str, Any]]:
    """Compile time and train-step time of jaxrnn at each sequence length.

    Also calls the jitted step (not the ahead-of-time compiled one) with two batches of
    the same shape and records its cache size: 1 means the second batch did not retrace.
    """
    jax = _jax_setup()
    rows = []
    for num_steps in steps:
        wt = w._replace(steps=num_steps)
        data = make_data(wt, seed)
        other = make_data(wt, seed + 1)
        for grad in ("bptt", "autodiff"):
            jitted, args = _jaxrnn_train(wt, data, grad=grad)
            start = time.perf_counter()
            compiled = jitted.lower(*args).compile()
            compile_s = time.perf_counter() - start
            call = lambda c=compiled, a=args: jax.block_until_ready(c(*a))  # noqa: E731
            call()
            median, best = _median_ms(call, runs)
            jax.block_until_ready(jitted(*args))
            batch = (jax.numpy.asarray(other["xs"]), jax.numpy.asarray(other["ys"]))
            jax.block_until_ready(jitted(args[0], *batch))
            rows.append(
                {
                    "T": num_steps,
                    "grad": grad,
                    "compile_s": compile_s,
                    "median_ms": median,
                    "min_ms": best,
                    "cache_size": jitted._cache_size(),
                }
            )
    return rows


def memory(w: Workload, seed: int, rounds: int, runs: int) -> list[dict[str, Any]]:
    """Peak memory (XLA's `memory_analysis`) and time of a train step, with and without remat.

    Peak is arguments + outputs + temporaries - aliased bytes of the compiled step.
    """
    jax = _jax_setup()
    data = make_data(w, seed)
    variants = {
        "autodiff": {"grad": "autodiff"},
        "autodiff, remat=True": {"grad": "autodiff", "remat": True},
        "autodiff, remat=True, head in map_chunks": {
            "grad": "autodiff",
            "remat": True,
            "chunks": True,
        },
        "bptt": {"grad": "bptt"},
    }
    compiled, info = {}, {}
    for name, kwargs in variants.items():
        jitted, args = _jaxrnn_train(w, data, **kwargs)
        c = jitted.lower(*args).compile()
        m = c.memory_analysis()
        peak = (
            m.argument_size_in_bytes
            + m.output_size_in_bytes
            + m.temp_size_in_bytes
            - m.alias_size_in_bytes
        )
        compiled[name] = lambda c=c, a=args: jax.block_until_ready(c(*a))
        compiled[name]()
        info[name] = {"variant": name, "temp_bytes": m.temp_size_in_bytes, "peak_bytes": peak}
        info[name]["times"] = []
    for r in range(rounds):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in order:
            info[name]["times"] += [1e3 * _time_first(compiled[name]) for _ in range(runs)]
    for row in info.values():
        times = row.pop("times")
        row["median_ms"], row["min_ms"] = float(np.median(times)), min(times)
    return list(info.values())
