"""Quadrature rules for the IG path integral over alpha in [0, 1].

Every rule returns ``(alphas, weights)``, two float64 arrays of shape (steps,)
whose weights sum to exactly 1, so any rule is exact on a linear model (whose
gradient is constant along the path) whatever the number of steps.

>>> alphas, weights = quadrature_rule("riemann_trapezoid", 3)
>>> alphas.tolist(), weights.tolist()
([0.0, 0.5, 1.0], [0.25, 0.5, 0.25])
"""

from __future__ import annotations

import functools

import numpy as np

METHODS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")
METHOD_LABELS = {"gausslegendre": "Gauss-Legendre", "riemann_left": "Riemann, left ends",
                 "riemann_right": "Riemann, right ends", "riemann_middle": "Riemann, midpoints",
                 "riemann_trapezoid": "trapezoid"}  # what each rule is called for people
MAX_STEPS = 2048  # Gauss-Legendre converges long before this; beyond it lies only waiting.


def check_steps(steps, method: str = "gausslegendre") -> int:
    """Return ``steps`` as an int, or raise ValueError naming what was received."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise ValueError(f"steps must be an integer between 1 and {MAX_STEPS}; received {steps!r}.")
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be between 1 and {MAX_STEPS}; received {steps}.")
    if method == "riemann_trapezoid" and steps < 2:
        raise ValueError("riemann_trapezoid needs steps >= 2 (it evaluates both ends of the path); received 1.")
    return int(steps)


def check_method(method) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; received {method!r}.")
    return method


@functools.lru_cache(maxsize=64)
def _rule(method: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    n = steps
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)  # on [-1, 1], weights sum to 2
        alphas, weights = (nodes + 1.0) / 2.0, weights / 2.0
    elif method == "riemann_trapezoid":
        alphas = np.linspace(0.0, 1.0, n)
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] /= 2.0  # the halved ends are what make the weights sum to 1
    else:
        offset = {"riemann_left": 0.0, "riemann_middle": 0.5, "riemann_right": 1.0}[method]
        alphas = (np.arange(n) + offset) / n
        weights = np.full(n, 1.0 / n)
    weights = weights / weights.sum()  # removes the last ulp of rounding so the sum is 1 to float64 precision
    alphas.setflags(write=False)
    weights.setflags(write=False)
    return alphas, weights


def quadrature_rule(method: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Path points and weights for ``method`` with ``steps`` points.

    Returns:
        alphas: float64 (steps,), in [0, 1].
        weights: float64 (steps,), summing to 1.
    """
    method = check_method(method)
    return _rule(method, check_steps(steps, method))
