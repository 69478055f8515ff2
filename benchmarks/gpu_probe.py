"""Checks and timings on a GPU that the throughput table does not show (run by gpu_check.sh):
exactness at JAX's two matmul precisions, and where the Nature CNN's time goes: the model alone,
the engine's compiled call with everything already on the card, the copies, and the host's work."""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from attribution import integrated_gradients  # noqa: E402
from attribution.engine import backend
from attribution.engine.examples import linear_model  # noqa: E402
from attribution.engine.groups import FeatureGroups  # noqa: E402
from attribution.engine.ig import explain_group_sums, explain_paths  # noqa: E402
from attribution.engine.quadrature import quadrature_rule  # noqa: E402
from benchmarks.ig_throughput import mlp, nature_cnn  # noqa: E402
from benchmarks.timing import median_ms  # noqa: E402

rng = np.random.default_rng(0)
weights = rng.normal(size=(6, 3)).astype(np.float32)
states = rng.normal(size=(256, 6)).astype(np.float32)
images = rng.uniform(0, 1, size=(512, 84, 84, 4)).astype(np.float32)
points = rng.normal(size=(10_000, 4)).astype(np.float32)
print(f"device {backend.device_name()}, memory for the budget {backend.accelerator_memory_bytes() / 2**30:.1f} GiB")
for precision in ("highest", None):
    backend.JAX_MATMUL_PRECISION = precision
    linear = integrated_gradients(
        linear_model(weights, np.zeros(3, np.float32)), states, target=1, steps=7, refine=False
    )
    error = np.abs(linear.attributions - states * weights[:, 1]).max()
    cnn, small = nature_cnn(), mlp()
    gap = integrated_gradients(cnn, images[:64]).relative_delta
    cnn_ms = median_ms(
        lambda: integrated_gradients(cnn, images, target=0, steps=50, method="riemann_middle", refine=False)
    )
    mlp_ms = median_ms(
        lambda: integrated_gradients(small, points, target=0, steps=50, method="riemann_middle", refine=False)
    )
    one_ms = median_ms(
        lambda: integrated_gradients(small, points[:1], target=0, steps=50, method="riemann_middle", refine=False), 30
    )
    print(
        f"precision {precision or 'default'}: linear max |IG - exact| {error:.1e}; "
        f"CNN max gap {np.abs(gap).max():.1e}; "
        f"CNN N=512 {cnn_ms:.1f} ms; MLP N=10,000 {mlp_ms:.2f} ms; MLP N=1 {one_ms:.2f} ms"
    )
backend.JAX_MATMUL_PRECISION = "highest"

# Where the CNN's time goes: forward alone against forward + input gradient, 13,312 rows.
cnn = nature_cnn()
trainable = [v.value for v in cnn.trainable_variables]
rows = jax.device_put(rng.uniform(0, 1, size=(13_312, 84, 84, 4)).astype(np.float32))
forward = jax.jit(lambda r: cnn.stateless_call(trainable, [], r)[0])
gradient = jax.jit(jax.grad(lambda r: cnn.stateless_call(trainable, [], r)[0][:, 0].sum()))
print(f"CNN 13,312 rows on the device: forward {median_ms(lambda: forward(rows).block_until_ready()):.1f} ms, "
      f"input gradient {median_ms(lambda: gradient(rows).block_until_ready()):.1f} ms")
print(f"512 CNN states (58 MB): to the device {median_ms(lambda: jax.device_put(images).block_until_ready()):.1f} ms, "
      f"back {median_ms(lambda: np.asarray(rows[:512] + 0)):.1f} ms (with a copy on the device)")

# The engine's CNN call at N = 512, steps = 50, from the inside out: on the card alone, through
# numpy both ways (the copies), and the whole integrated_gradients (input checks, completeness sums).
run = backend.compiled(cnn, (84, 84, 4), explain_paths, True)
alphas, weights = (array.astype(np.float32) for array in quadrature_rule("riemann_middle", 50))
arguments = (images, np.zeros((1, 84, 84, 4), np.float32), np.zeros(len(images), np.int32), alphas, weights)
on_card = [jax.device_put(array) for array in arguments]
card_ms = median_ms(lambda: jax.block_until_ready(run.device_call(*on_card)))
numpy_ms = median_ms(lambda: run(*arguments))
whole_ms = median_ms(
    lambda: integrated_gradients(cnn, images, target=0, steps=50, method="riemann_middle", refine=False)
)
print(f"engine, CNN N={len(images)}: compiled call on the card {card_ms:.1f} ms, through numpy {numpy_ms:.1f} ms, "
      f"whole integrated_gradients {whole_ms:.1f} ms")

# Group sums on the card (five objects a state, as Pong's): what comes back is (N, 5), not the maps.
labels = rng.integers(0, 5, size=(len(images), 84, 84, 4)).astype(np.int32)
grouped = backend.compiled(cnn, (84, 84, 4), explain_group_sums, True, 5)
grouped_card_ms = median_ms(lambda: jax.block_until_ready(grouped.device_call(*on_card, jax.device_put(labels))))
groups = FeatureGroups(tuple("abcde"), labels)
grouped_whole_ms = median_ms(lambda: integrated_gradients(cnn, images, target=0, steps=50, method="riemann_middle",
                                                          refine=False, groups=groups, attributions=False))
print(f"engine, CNN N={len(images)}, group sums only: compiled call on the card {grouped_card_ms:.1f} ms, whole "
      f"integrated_gradients {grouped_whole_ms:.1f} ms ({len(images) / grouped_whole_ms * 1e3:,.0f} states/s)")

one = jax.device_put(points[:1])
tiny = mlp()
call = jax.jit(lambda r: tiny.stateless_call([v.value for v in tiny.trainable_variables], [], r)[0])
print(f"MLP one row: jit call and fetch {median_ms(lambda: np.asarray(call(one)), 30):.3f} ms")
