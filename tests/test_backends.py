"""TensorFlow (what the app uses) and JAX (what the GPU check uses) run the same engine code
and must agree to 1e-5. JAX runs in a subprocess: a process holds one Keras backend."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np

from attribution import integrated_gradients
from attribution.engine import backend
from attribution.engine.examples import paper_network_1

from ig_on_backend import run_cases
from networks import mlp, small_cnn

WORKER = Path(__file__).with_name("ig_on_backend.py")


def test_tensorflow_and_jax_agree_to_1e_5(tmp_path):
    assert keras.backend.backend() == "tensorflow"
    rng = np.random.default_rng(3)
    for model, states in [(mlp(), rng.normal(size=(9, 4)) * 2),
                          (paper_network_1(), rng.uniform(-1, 4, size=(6, 2))),
                          (small_cnn(), rng.uniform(size=(3, 12, 12, 2)))]:
        model.save(tmp_path / f"{model.name}.keras")
        np.save(tmp_path / f"{model.name}.npy", states.astype(np.float32))

    # JAX runs at its own XLA defaults, without the flag attribution sets for TensorFlow
    xla_flags = os.environ.get("XLA_FLAGS", "").replace(backend.YNNPACK_FUSIONS, "").strip()
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags)
    subprocess.run([sys.executable, str(WORKER), str(tmp_path), str(tmp_path / "jax.npz")],
                   env=env, check=True, timeout=600)
    on_jax = np.load(tmp_path / "jax.npz")
    on_tensorflow = run_cases(tmp_path)

    assert str(on_jax["backend"]) == "jax"
    assert set(on_tensorflow) == set(on_jax.files) - {"backend"} and len(on_tensorflow) == 3 * 6 * 3 + 3
    for key, expected in on_tensorflow.items():
        np.testing.assert_allclose(on_jax[key], expected, rtol=1e-5, atol=1e-5, err_msg=key)


def test_tensorflow_xla_fuses_the_mlp_gradient_into_ynnpack_kernels():
    """The flag ``backend`` sets at import reaches XLA: without it the 500-state MLP took 6.6 ms, not 4.2-4.7."""
    import tensorflow as tf

    model = mlp()
    rows = tf.constant(np.random.default_rng(0).normal(size=(256, 4)), tf.float32)

    @tf.function(jit_compile=True)
    def input_gradient(rows):
        with tf.GradientTape() as tape:
            tape.watch(rows)
            outputs = model(rows)
        return tape.gradient(outputs, rows)

    hlo = input_gradient.experimental_get_compiler_ir(rows)(stage="optimized_hlo")
    fused = [line for line in hlo.splitlines() if "ynn_fusion" in line and "kind=kCustom" in line]
    assert len(fused) >= 2, hlo  # the forward's products and the backward's


def test_jax_batch_buckets_pad_by_at_most_a_quarter():
    sizes = np.arange(1, 70_000)
    buckets = np.array([backend.bucket(int(n)) for n in sizes])
    assert np.all(buckets >= sizes) and np.all(buckets[4:] <= 1.25 * sizes[4:])
    assert len(set(buckets[(sizes > 1024) & (sizes <= 2048)])) == 4  # four compiled shapes per doubling
    assert all(backend.bucket(2**k) == 2**k for k in range(20))  # full power-of-two chunks are never padded


def test_tensors_remembered_by_contents_never_stand_for_other_arrays():
    """TensorFlow's flat call reuses the tensors of the quadrature rule and of a shared baseline
    by their bytes: another baseline of the same shape, or the same bytes as another dtype or
    shape, is a different tensor."""
    import tensorflow as tf

    from attribution import integrated_gradients

    model, rng = mlp(), np.random.default_rng(5)
    states = rng.normal(size=(2, 4)).astype(np.float32)
    baselines = rng.normal(size=(2, 4)).astype(np.float32)
    for baseline in (baselines[0], baselines[1], baselines[0]):
        shared = integrated_gradients(model, states, baseline, steps=16, refine=False)
        per_state = integrated_gradients(model, states, np.stack([baseline, baseline]), steps=16, refine=False)
        np.testing.assert_allclose(shared.attributions, per_state.attributions, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(shared.baseline_outputs, per_state.baseline_outputs, rtol=1e-6, atol=1e-7)
    assert not np.allclose(integrated_gradients(model, states, baselines[0], refine=False).attributions,
                           integrated_gradients(model, states, baselines[1], refine=False).attributions)

    array = np.arange(4, dtype=np.float32)
    as_matrix, as_integers = array.reshape(2, 2), array.view(np.int32)
    tensors = [backend._constant_tensor(a) for a in (array, as_matrix, as_integers)]
    assert [(t.shape, t.dtype) for t in tensors] == [((4,), tf.float32), ((2, 2), tf.float32), ((4,), tf.int32)]
    assert backend._constant_tensor(array.copy()) is tensors[0]


def test_compiling_the_engine_prints_no_autograph_warning(capfd, caplog):
    """A model used whole once made autograph print 'could not parse the source code' at every compilation."""
    from attribution import integrated_gradients
    from attribution.engine.examples import linear_model

    model = linear_model(np.ones((3, 2), np.float32), np.zeros(2, np.float32))  # functional: used whole
    integrated_gradients(model, np.ones((1, 3), np.float32))
    printed = capfd.readouterr()
    assert "could not parse" not in printed.out + printed.err + caplog.text


class _FakeConcrete:
    """A concrete function whose public call gives 1.0 and whose private flat call gives ``private_value``."""

    captured_inputs = ()

    def __init__(self, private_value):
        self.private_value, self.private_calls = private_value, 0

    def __call__(self, *tensors):
        import tensorflow as tf

        return (tf.constant([1.0]),)

    def _call_flat(self, tensors, captured):
        import tensorflow as tf

        self.private_calls += 1
        return [tf.constant([self.private_value])]


def test_the_private_flat_call_is_kept_only_where_it_agrees_with_the_public_one():
    agreeing, disagreeing = _FakeConcrete(1.0), _FakeConcrete(2.0)
    for concrete in (agreeing, disagreeing):
        call = backend.flat_call(concrete)
        assert [float(t.numpy()[0]) for _ in range(3) for t in call([])] == [1.0, 1.0, 1.0]
    assert agreeing.private_calls == 3      # checked on the first call, then used
    assert disagreeing.private_calls == 1   # checked once, then never used again

    class WithoutPrivateCall(_FakeConcrete):
        _call_flat = None

    assert [float(t.numpy()[0]) for t in backend.flat_call(WithoutPrivateCall(2.0))([])] == [1.0]


def test_the_engine_gives_the_same_attributions_through_the_public_call(monkeypatch, rng):
    states = rng.normal(size=(6, 4)).astype(np.float32)
    private = integrated_gradients(mlp(), states, target="all", steps=16, refine=False)
    monkeypatch.setattr(backend, "USE_PRIVATE_FLAT_CALL", False)
    public = integrated_gradients(mlp(), states, target="all", steps=16, refine=False)  # a new model: compiled anew
    np.testing.assert_allclose(public.attributions, private.attributions, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(public.outputs, private.outputs, rtol=1e-6, atol=1e-7)
