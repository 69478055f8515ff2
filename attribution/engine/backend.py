"""The one place that knows which Keras backend runs: compilation and gradients.

The engine (``ig.py``) is written in ``keras.ops`` against one function this module gives it,

    vjp(fn, inputs) -> (fn(inputs), pullback)     pullback(cotangents) = d sum(fn(inputs) * cotangents) / d inputs

as ``jax.vjp`` has it (one forward pass serves the outputs and the gradients), and the model split
as tail(head(x)) (``split.py``). This module compiles the engine's code once per model and
observation shape.

TensorFlow compiles with ``tf.function`` and a ``None`` batch dimension, so a new N or new
targets never retrace. XLA (TensorFlow's ``jit_compile``, and ``jax.jit``) still compiles each
new shape, 0.3 s each here, so under XLA the batch is padded to a bucket (``bucket``: at most 25%
more rows): one compilation per bucket instead of one per N. JAX gets the weights as arguments
(a ``StatelessScope``), never baked in as constants.
"""

from __future__ import annotations

import functools
import os
import threading
import weakref

import keras
import numpy as np

from attribution.engine.split import Split, split_model

BACKEND = keras.backend.backend()
if BACKEND not in ("tensorflow", "jax"):
    raise ImportError(f"attribution supports the tensorflow and jax Keras backends; KERAS_BACKEND is {BACKEND!r}.")

# XLA's CPU compiler can run matrix products, with the elementwise work and sums it can fuse into
# them, as YNNPACK kernels, which do a 64-wide product in about half the time of its own. JAX's XLA
# does so by default; TensorFlow 2.21's only when asked. Measured on the 500-state MLP (BENCHMARKS.md):
# 6.6 ms without, 4.2-4.7 ms with. XLA reads XLA_FLAGS at its first compilation, so this is set at
# import; an XLA_FLAGS that already names the setting wins. Only on the version it was measured on:
# XLA aborts the process on a flag it does not know.
YNNPACK_FUSIONS = "--xla_cpu_experimental_ynn_fusion_type=" + ",".join(
    f"LIBRARY_FUSION_TYPE_{kind}" for kind in ("DOT", "ELTWISE", "REDUCE"))


def _ask_xla_for_ynnpack_fusions() -> None:
    import tensorflow as tf

    flags = os.environ.get("XLA_FLAGS", "")
    if tf.version.VERSION.startswith("2.21.") and "xla_cpu_experimental_ynn_fusion_type" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {YNNPACK_FUSIONS}".strip()


if BACKEND == "tensorflow":
    _ask_xla_for_ynnpack_fusions()

# "highest": full float32 on a GPU, so the engine stays exact (JAX's default, TF32, was seen to
# miss a linear model by 9e-4 on an H100); None: JAX's default, about 1.35x faster on the CNN.
JAX_MATMUL_PRECISION: str | None = "highest"

_cache: weakref.WeakKeyDictionary[keras.Model, dict] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def cached(model: keras.Model, key, compute):
    """``compute()``, remembered for as long as ``model`` lives (thread-safe)."""
    with _cache_lock:
        per_model = _cache.setdefault(model, {})
        if key in per_model:
            return per_model[key]
    value = compute()
    with _cache_lock:
        return per_model.setdefault(key, value)


@functools.lru_cache(maxsize=1)
def device_name() -> str:
    """What the attribution runs on, for people: 'CPU' or the GPU's name."""
    if BACKEND == "jax":
        import jax

        device = jax.devices()[0]
        return "CPU" if device.platform == "cpu" else str(device.device_kind)
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")


def on_gpu() -> bool:
    return device_name() != "CPU"


@functools.lru_cache(maxsize=1)
def accelerator_memory_bytes() -> int:
    """Memory the framework may use on the GPU, or 0 on a CPU (or where the framework does not say)."""
    if not on_gpu():
        return 0
    if BACKEND == "jax":
        import jax

        return int((jax.devices()[0].memory_stats() or {}).get("bytes_limit", 0))
    return 8 * 2**30  # TensorFlow does not report the card's size: assume a modest one


def has_convolutions(model: keras.Model) -> bool:
    return any(isinstance(layer, keras.layers.Conv2D | keras.layers.Conv1D | keras.layers.Conv3D)
               for layer in all_layers(model))


def all_layers(layer):
    """Every layer inside ``layer``, nested models' layers included."""
    for sub in getattr(layer, "layers", None) or []:
        yield sub
        yield from all_layers(sub)


def default_jit_compile(model: keras.Model) -> bool:
    """XLA where it was measured to help (BENCHMARKS.md): always on JAX (its only compiler)
    and on GPU; on a TensorFlow CPU for dense networks only, since XLA made convolutions
    2-3x slower there."""
    return cached(model, "default_jit_compile", lambda: BACKEND == "jax" or on_gpu() or not has_convolutions(model))


def output_size(model: keras.Model, obs_shape: tuple) -> int:
    """n_outputs of a model taking (batch, *obs_shape), found symbolically once and cached.

    Raises ValueError when the model cannot take that shape or does not return (batch, n_outputs).
    """
    return cached(model, ("output_size", tuple(obs_shape)), lambda: _output_size(model, obs_shape))


def _output_size(model, obs_shape) -> int:
    try:
        spec = model.compute_output_spec(keras.KerasTensor((1, *obs_shape), dtype="float32"))
    except Exception as error:  # the framework's own message is kept, behind one that says what was tried
        raise ValueError(
            f"the model could not be called on float32 inputs of shape (N, {', '.join(map(str, obs_shape))}): "
            f"{type(error).__name__}: {error}"
        ) from error
    shape = getattr(spec, "shape", None)
    if shape is None or len(shape) != 2 or shape[1] is None:
        raise ValueError(f"the model must return one array (batch, n_outputs); it returns {spec!r}. "
                         "Pick the output to explain with one of attribution.explain's wrappers.")
    return int(shape[1])


def compiled(model: keras.Model, obs_shape: tuple, body, jit_compile: bool, n_groups: int | None = None):
    """``run(x, x0, targets, alphas, weights)`` -> numpy arrays of ``body``, compiled once and cached.

    ``body(split, vjp, x, x0, targets, alphas, weights)`` is the engine's keras.ops code (see above).
    With ``n_groups``, ``run`` and ``body`` take one more argument, the group labels int32
    (1 or P, *obs_shape), and ``body`` is given ``n_groups=n_groups``.
    """
    build = _compile_jax if BACKEND == "jax" else _compile_tensorflow
    obs_shape = tuple(obs_shape)

    def make():
        bound = functools.partial(body, split(model, obs_shape))
        if n_groups is not None:
            bound = functools.partial(bound, n_groups=n_groups)
        return build(model, obs_shape, bound, bool(jit_compile), n_groups is not None)

    return cached(model, (obs_shape, bool(jit_compile), body, n_groups), make)


def split(model: keras.Model, obs_shape: tuple) -> Split:
    """``model`` as tail(head(x)), head affine where it can be (``split.py``), cached per model."""
    return cached(model, ("split", obs_shape), lambda: split_model(model, obs_shape))


def compiled_call(model: keras.Model):
    """``call(x)``: the model's outputs (an array or a dict of arrays) as numpy, compiled once per
    model with a ``None`` batch dimension; 10x quicker than an eager call for one small state."""
    return cached(model, "compiled_call", lambda: _compile_call(model))


def _compile_call(model):
    to_numpy = lambda outputs: keras.tree.map_structure(np.asarray, outputs)  # noqa: E731
    if BACKEND == "jax":
        import jax

        @jax.jit
        def call(trainable, non_trainable, x):
            return model.stateless_call(trainable, non_trainable, x, training=False)[0]

        def run(x):
            trainable = [v.value for v in model.trainable_variables]
            non_trainable = [v.value for v in model.non_trainable_variables]
            return to_numpy(call(trainable, non_trainable, np.asarray(x, np.float32)))
        return run

    import tensorflow as tf

    spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32)
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    return lambda x: to_numpy(concrete(np.asarray(x, np.float32)))


def _tensorflow_vjp(fn, inputs):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = fn(inputs)
    return outputs, lambda cotangents: tape.gradient(outputs, inputs, output_gradients=cotangents)


def _jax_vjp(fn, inputs):
    import jax

    outputs, pullback = jax.vjp(fn, inputs)
    return outputs, lambda cotangents: pullback(cotangents)[0]


def _compile_tensorflow(model, obs_shape, body, jit_compile, grouped):
    import tensorflow as tf

    x = tf.TensorSpec((None, *obs_shape), tf.float32)
    vector = tf.TensorSpec((None,), tf.float32)
    labels = (tf.TensorSpec((None, *obs_shape), tf.int32),) if grouped else ()
    function = tf.function(lambda *args: body(_tensorflow_vjp, *args), jit_compile=jit_compile)
    concrete = function.get_concrete_function(x, x, tf.TensorSpec((None,), tf.int32), vector, vector, *labels)

    call = flat_call(concrete)

    def run(x, x0, targets, alphas, weights, *labels):
        n = len(x)
        if jit_compile:  # plain TensorFlow takes any N; XLA compiles each new one (0.3 s): pad to a bucket
            x, x0, targets = _pad(x, n), _pad(x0, len(x0)), _pad(targets, n)
            labels = tuple(_pad(array, len(array)) for array in labels)
        # The quadrature rule and a small shared baseline, the same from call to call, are made
        # tensors once. The engine has checked the arguments' shapes and types already.
        tensors = [tf.convert_to_tensor(x), _constant_tensor(x0) if len(x0) == 1 else tf.convert_to_tensor(x0),
                   tf.convert_to_tensor(targets), _constant_tensor(alphas), _constant_tensor(weights),
                   *(tf.convert_to_tensor(array) for array in labels)]
        return tuple(t.numpy()[:n] for t in call(tensors))

    return run


def flat_call(concrete):
    """``call(tensors)``: the concrete function's flat outputs for its arguments in order.

    TensorFlow 2.21's private flat call skips ``tf.function``'s argument binding and conversion:
    for one MLP state the engine's call took 0.25 ms instead of 0.34 (BENCHMARKS.md). The first call
    runs both; the private one is kept only where it exists and gave the public call's results, so
    any other TensorFlow gets the public call.
    """
    import tensorflow as tf

    def public(tensors):
        return tf.nest.flatten(concrete(*tensors))

    private = getattr(concrete, "_call_flat", None)
    if not USE_PRIVATE_FLAT_CALL or private is None:
        return public

    def fast(tensors):
        return private(tensors, concrete.captured_inputs)

    chosen = None

    def first_then_chosen(tensors):
        nonlocal chosen
        if chosen is not None:
            return chosen(tensors)
        expected = public(tensors)
        try:
            got = fast(tensors)
            same = len(got) == len(expected) and all(
                np.allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, equal_nan=True)
                for a, b in zip(got, expected, strict=True))
        except Exception:  # a TensorFlow whose private call takes other arguments
            same = False
        chosen = fast if same else public
        return expected

    return first_then_chosen


# False sends every TensorFlow call through the public API (tests use it to check that path).
USE_PRIVATE_FLAT_CALL = True


def _constant_tensor(array: np.ndarray):
    """``array`` as a TensorFlow tensor, remembered by its contents when it is small (up to 16 kB)."""
    if array.nbytes > 16384:
        import tensorflow as tf

        return tf.convert_to_tensor(array)
    return _remembered_tensor(array.dtype.str, array.shape, array.tobytes())


@functools.lru_cache(maxsize=256)
def _remembered_tensor(dtype: str, shape: tuple, data: bytes):
    import tensorflow as tf

    return tf.constant(np.frombuffer(data, dtype).reshape(shape))


def _compile_jax(model, obs_shape, body, jit_compile, grouped):
    import jax

    def run_body(trainable, non_trainable, *args):
        values = [
            *zip(model.trainable_variables, trainable, strict=True),
            *zip(model.non_trainable_variables, non_trainable, strict=True),
        ]
        with keras.StatelessScope(state_mapping=values):
            return body(_jax_vjp, *args)

    compiled_body = jax.jit(run_body) if jit_compile else run_body

    def device_call(x, x0, targets, alphas, weights, *labels):
        """``body``'s results as arrays on the device, for arguments of a bucketed batch size
        (numpy or already on the device): what ``benchmarks/gpu_probe.py`` times without copies."""
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        with jax.default_matmul_precision(JAX_MATMUL_PRECISION):
            return compiled_body(trainable, non_trainable, x, x0, targets, alphas, weights, *labels)

    def run(x, x0, targets, alphas, weights, *labels):
        n = len(x)
        found = device_call(_pad(x, n), _pad(x0, len(x0)), _pad(targets, n), alphas, weights,
                            *(_pad(array, len(array)) for array in labels))
        return tuple(np.asarray(array)[:n] for array in found)

    run.device_call = device_call
    return run


def _pad(array: np.ndarray, n: int) -> np.ndarray:
    """Pad the batch axis with zeros up to ``bucket(n)``, so jit compiles once per bucket."""
    size = bucket(n)
    if size == n:
        return array
    return np.concatenate([array, np.zeros((size - n, *array.shape[1:]), array.dtype)])


def bucket(n: int) -> int:
    """The smallest of 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, ... (m * 2**k, m in 4..7) that is >= n:
    at most 25% padding, and four compiled shapes per doubling of N."""
    if n <= 4:
        return max(1, n)
    shift = n.bit_length() - 3  # n >> shift is in 4..7
    return -(-n >> shift) << shift
