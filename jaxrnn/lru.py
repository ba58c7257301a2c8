r"""The linear recurrent unit (LRU) of Orvieto et al. (2023).

A diagonal complex linear recurrence with a stable exponential parametrisation
of its eigenvalues, an input normalisation, and a real readout:

$$h_t = \lambda \odot h_{t-1} + \gamma \odot (x_t B), \qquad
  y_t = \mathrm{Re}(h_t C) + x_t D$$

with $\lambda_j = \exp(-e^{\nu_j} + i\, e^{\theta_j})$ (so $|\lambda_j| < 1$ for every
real $\nu_j$) and $\gamma_j = e^{\gamma^{\log}_j}$, initialised to
$\sqrt{1 - |\lambda_j|^2}$ so that the state's scale does not grow with the memory.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxrnn import checks, fused
from jaxrnn.cell import Cell, LinearStep, Params

Array = jax.Array

__all__ = ["lru"]


def _eigenvalues(params: Params) -> tuple[Array, Array]:
    """Real and imaginary parts of `lambda (N,)`."""
    modulus = jnp.exp(-jnp.exp(params["nu_log"]))
    phase = jnp.exp(params["theta_log"])
    return modulus * jnp.cos(phase), modulus * jnp.sin(phase)


def _like(vector: Array, x: Array) -> Array:
    """`vector (N,)` reshaped to broadcast against `x (..., N)`; rank promotion may be off."""
    return vector.reshape((1,) * (x.ndim - 1) + vector.shape)


def _complex_dtype(dtype: Any) -> Any:
    return jnp.complex128 if jnp.dtype(dtype) == jnp.float64 else jnp.complex64


def lru(
    hidden_size: int,
    *,
    state_size: int | None = None,
    r_min: float = 0.0,
    r_max: float = 1.0,
    max_phase: float = 6.28,
) -> Cell:
    r"""The linear recurrent unit (Orvieto et al. 2023): a diagonal complex linear recurrence.

    $$h_t = \lambda \odot h_{t-1} + \gamma \odot (x_t B), \qquad
      y_t = \mathrm{Re}(h_t C) + x_t D,$$

    $$\lambda = \exp(-e^{\nu^{\log}} + i\, e^{\theta^{\log}}), \qquad
      \gamma = e^{\gamma^{\log}}$$

    with a complex state `h` of `N = state_size` units and an output `y` of
    `H = hidden_size` units. Initialisation follows the paper's ring
    initialisation: $|\lambda|^2$ uniform on $[r_{min}^2, r_{max}^2]$ (so
    $|\lambda| \in [r_{min}, r_{max}]$), the phase $\arg\lambda$ uniform on
    $[0, \text{max_phase}]$, $\gamma = \sqrt{1 - |\lambda|^2}$, $B$ complex Gaussian
    with variance $1/(2I)$ per part, $C$ complex Gaussian with variance $1/N$ per
    part. The paper's $D$ is a diagonal skip connection (its inputs and outputs
    have one size); here $D$ is a dense `(input_size, hidden_size)` matrix, Gaussian
    with variance $1/I$, so the two sizes may differ.

    Params: `nu_log (N,)`, `theta_log (N,)`, `gamma_log (N,)`, `b_re (I, N)`,
    `b_im (I, N)`, `c_re (N, H)`, `c_im (N, H)`, `d (I, H)`, laid out for `x @ w`.

    The carry is the complex state as a tuple of real arrays
    `(h_re, h_im)`, each `(*batch, N)`, so it can be saved, checked and fed back
    like any other carry (`initial_carry`, checkpoints, `jaxrnn.generate`). The
    recurrence runs in complex numbers (complex64, or complex128 for float64 params;
    half-precision params are widened to float32 for it and the results cast back).

    Args:
      hidden_size: the output size `H`.
      state_size: the number of complex state units `N` (default `hidden_size`).
      r_min: the smallest initial eigenvalue modulus, `0 <= r_min < r_max`.
      r_max: the largest initial eigenvalue modulus, `r_max <= 1`. Values near 1
        (e.g. `r_min=0.9, r_max=0.999`) give long memory.
      max_phase: initial phases are drawn from `[0, max_phase]`, `max_phase > 0`
        (the paper's default 6.28 covers the circle; a small value such as
        `pi / 10` gives slowly rotating, smoother states).

    Returns:
      A `Cell` whose step is a `jaxrnn.LinearStep`, so `jaxrnn.unroll` can run it in
      parallel.

    Raises:
      TypeError: a size is not an int or a radius not a number.
      ValueError: sizes not positive, or the radii or phase out of range.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxrnn as jr
      >>> cell = jr.lru(hidden_size=8, state_size=16, r_min=0.9, r_max=0.999)
      >>> params = cell.init(jax.random.key(0), input_size=3)
      >>> modulus = jnp.exp(-jnp.exp(params["nu_log"]))
      >>> bool(jnp.all((modulus >= 0.9) & (modulus <= 0.999)))
      True
      >>> xs = jnp.ones((50, 2, 3))
      >>> (h_re, h_im), ys = jr.unroll(cell, params, xs, parallel=True)
      >>> ys.shape, h_re.shape
      ((50, 2, 8), (2, 16))

    References:
      Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu & De, "Resurrecting Recurrent
      Neural Networks for Long Sequences", ICML 2023.
    """
    hidden_size = checks.positive_int(hidden_size, "hidden_size")
    N = hidden_size if state_size is None else checks.positive_int(state_size, "state_size")
    r_max = checks.number(r_max, "r_max", lambda r: 0 < r <= 1, "a radius in (0, 1]")
    what = f"a radius in [0, r_max={r_max})"
    r_min = checks.number(r_min, "r_min", lambda r: 0 <= r < r_max, what)
    max_phase = checks.number(max_phase, "max_phase", lambda p: p > 0, "a finite number > 0")
    H = hidden_size

    def init(key: Array, input_size: int, dtype: Any = jnp.float32) -> Params:
        key = checks.prng_key(key)
        input_size = checks.positive_int(input_size, "input_size")
        dtype = checks.floating_dtype(dtype)
        draw = dtype if jnp.dtype(dtype).itemsize >= 4 else jnp.float32
        k_u1, k_u2, k_bre, k_bim, k_cre, k_cim, k_d = jax.random.split(key, 7)
        # Open intervals keep every logarithm finite: u = 0 would give log(0).
        tiny = jnp.finfo(draw).tiny
        u1 = jax.random.uniform(k_u1, (N,), draw, minval=tiny)
        u2 = jax.random.uniform(k_u2, (N,), draw, minval=tiny)
        modulus_sq = u1 * (r_max**2 - r_min**2) + r_min**2
        nu_log = jnp.log(-0.5 * jnp.log(modulus_sq))
        theta_log = jnp.log(max_phase * u2)
        gamma_log = 0.5 * jnp.log1p(-modulus_sq)
        b_scale = 1.0 / math.sqrt(2 * input_size)
        c_scale = 1.0 / math.sqrt(N)
        params = {
            "nu_log": nu_log,
            "theta_log": theta_log,
            "gamma_log": gamma_log,
            "b_re": jax.random.normal(k_bre, (input_size, N), draw) * b_scale,
            "b_im": jax.random.normal(k_bim, (input_size, N), draw) * b_scale,
            "c_re": jax.random.normal(k_cre, (N, H), draw) * c_scale,
            "c_im": jax.random.normal(k_cim, (N, H), draw) * c_scale,
            "d": jax.random.normal(k_d, (input_size, H), draw) / math.sqrt(input_size),
        }
        return {name: value.astype(dtype) for name, value in params.items()}

    def project(params: Params, x: Array) -> Array:
        return x @ jnp.concatenate([params["b_re"], params["b_im"], params["d"]], axis=1)

    def coefficients(params: Params, projected: Array) -> tuple[Array, Array]:
        real = jnp.finfo(_complex_dtype(projected.dtype)).dtype
        p = {k: v.astype(real) for k, v in params.items() if k.endswith("_log")}
        u = projected[..., : 2 * N].astype(real)
        lam_re, lam_im = _eigenvalues(p)
        gamma = _like(jnp.exp(p["gamma_log"]), u)
        b = jax.lax.complex(gamma * u[..., :N], gamma * u[..., N:])
        return jnp.broadcast_to(jax.lax.complex(lam_re, lam_im), b.shape), b

    def output(params: Params, states: Array, projected: Array) -> Array:
        dtype = projected.dtype
        readout = (
            states.real.astype(dtype) @ params["c_re"] - states.imag.astype(dtype) @ params["c_im"]
        )
        return readout + projected[..., 2 * N :]

    def to_state(carry: tuple[Array, Array]) -> Array:
        h_re, h_im = carry
        real = jnp.finfo(_complex_dtype(h_re.dtype)).dtype
        return jax.lax.complex(h_re.astype(real), h_im.astype(real))

    step = LinearStep(project, coefficients, output, to_state, to_carry=lambda h: (h.real, h.imag))
    return Cell(init, fused.zeros_carry(N, 2), step, H, "lru")
