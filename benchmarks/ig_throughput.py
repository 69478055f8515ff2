"""IG throughput: this engine against the two ways IG is usually written.

    python benchmarks/ig_throughput.py                      # this machine's CPU, TensorFlow
    KERAS_BACKEND=jax python benchmarks/ig_throughput.py --gpu-sizes   # N = 10,000 MLP / 512 CNN

References (same model, same states, steps = 50, Riemann-middle points so all do equal work):
  * tape loop: one gradient call per path point (the tutorial style), batched over the states;
  * eager batched: all (N * steps) rows in one eager gradient call, no compilation: the compute
    bound the engine should reach for large convolutional work.
Times are the median of --repeats calls, or of as many as fill one second where that is more
(a sub-millisecond call's median of 50 moved by 20% from run to run), after one warm-up call
(compilation excluded).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from attribution import integrated_gradients  # noqa: E402
from attribution.engine import backend
from attribution.engine.quadrature import quadrature_rule  # noqa: E402

from timing import median_ms  # noqa: E402

STEPS = 50


def mlp() -> keras.Model:
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(64, activation="tanh"),
                             keras.layers.Dense(64, activation="tanh"), keras.layers.Dense(2)], name="mlp_4_64_64_2")


def nature_cnn() -> keras.Model:
    return keras.Sequential([
        keras.Input((84, 84, 4)),
        keras.layers.Conv2D(32, 8, strides=4, activation="relu"),
        keras.layers.Conv2D(64, 4, strides=2, activation="relu"),
        keras.layers.Conv2D(64, 3, strides=1, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dense(6),
    ], name="nature_dqn_cnn")


def reference_gradient(model):
    """Eager d sum_r F(rows)[r, targets[r]] / d rows, written directly against the backend."""
    if backend.BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        def gradient(rows, targets):
            return np.asarray(jax.grad(lambda r: jnp.sum(jnp.take_along_axis(model(r), targets[:, None], 1)))(rows))
        return gradient
    import tensorflow as tf

    def gradient(rows, targets):
        rows = tf.convert_to_tensor(rows)
        with tf.GradientTape() as tape:
            tape.watch(rows)
            selected = tf.gather(model(rows), targets, axis=1, batch_dims=1)
        return tape.gradient(selected, rows).numpy()
    return gradient


def tape_loop(model, states, targets):
    gradient, (alphas, weights) = reference_gradient(model), quadrature_rule("riemann_middle", STEPS)
    total = np.zeros_like(states)
    for alpha, weight in zip(alphas, weights, strict=True):
        total += weight * gradient((alpha * states).astype(np.float32), targets)
    return total * states


def eager_batched(model, states, targets):
    gradient, (alphas, weights) = reference_gradient(model), quadrature_rule("riemann_middle", STEPS)
    rows = (alphas.reshape(-1, *[1] * states.ndim) * states[None]).astype(np.float32)  # (S, N, *obs)
    grads = gradient(rows.reshape(-1, *states.shape[1:]), np.tile(targets, STEPS))
    grads = grads.reshape(STEPS, *states.shape)
    return np.tensordot(weights.astype(np.float32), grads, axes=1) * states


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--gpu-sizes", action="store_true", help="MLP at N = 10,000 and CNN at N = 512")
    parser.add_argument(
        "--engine-only", action="store_true", help="skip the two references (they take minutes on a GPU)"
    )
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    big_mlp, big_cnn = (10_000, 512) if args.gpu_sizes else (500, 32)
    cases = [(mlp(), 1), (None, big_mlp), (nature_cnn(), 1), (None, big_cnn)]
    print(f"IG throughput, steps = {STEPS}, Keras {keras.__version__} on {backend.BACKEND}, "
          f"device {backend.device_name()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"XLA_FLAGS: {os.environ.get('XLA_FLAGS') or '(none)'}")
    print(f"{'model':<16}{'N':>7}  {'implementation':<30}{'ms / call':>11}{'states / s':>13}{'vs eager':>10}")
    model = None
    for case_model, n in cases:
        model = case_model or model
        rng = np.random.default_rng(0)
        states = rng.normal(size=(n, *model.input_shape[1:])).astype(np.float32)
        targets = np.zeros(n, dtype=np.int64)
        repeats = args.repeats if n * np.prod(model.input_shape[1:]) < 1e6 else max(3, args.repeats // 4)
        rows = {}
        for jit in (True, False):
            label = f"engine, XLA {'on' if jit else 'off'}" + (
                " (default)" if jit == backend.default_jit_compile(model) else ""
            )
            if backend.BACKEND == "jax" and not jit:
                continue  # JAX without jit is eager op-by-op: not an engine configuration
            rows[label] = median_ms(
                lambda: integrated_gradients(
                    model, states, target=targets, steps=STEPS, method="riemann_middle", refine=False, jit_compile=jit
                ),
                repeats,
            )
        if not args.engine_only:
            rows["eager batched (reference)"] = median_ms(lambda: eager_batched(model, states, targets), repeats)
            rows["tape loop per point (tutorial)"] = median_ms(lambda: tape_loop(model, states, targets), repeats)
        eager = rows.get("eager batched (reference)", math.nan)
        for label, ms in rows.items():
            versus = "" if math.isnan(eager) else f"{ms / eager:>9.2f}x"
            print(f"{model.name:<16}{n:>7}  {label:<30}{ms:>11.2f}{n / ms * 1e3:>13,.0f}{versus}")


if __name__ == "__main__":
    main()
