"""Integrating after the first layer's affine map (``attribution/engine/split.py``) changes the work,
never the attributions."""

import keras
import numpy as np
import pytest

from attribution import integrated_gradients
from attribution.engine import backend
from attribution.engine import split as splitting
from attribution.engine.examples import linear_model

from networks import mlp, small_cnn


def _sequential(*layers, obs=(6,)):
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input(obs), *layers])


SPLIT_MODELS = {
    "cnn, Conv2D(relu) first": lambda: small_cnn(),
    "Dense(tanh) first": lambda: _sequential(keras.layers.Dense(5, activation="tanh"), keras.layers.Dense(3)),
    "Dense without bias or activation": lambda: _sequential(keras.layers.Dense(6, use_bias=False),
                                                            keras.layers.Dense(3, activation="softmax")),
    "Conv1D without bias": lambda: _sequential(keras.layers.Conv1D(2, 3, strides=2, use_bias=False, activation="tanh"),
                                               keras.layers.Flatten(), keras.layers.Dense(2), obs=(9, 2)),
    "Conv2D, same padding, dilation": lambda: _sequential(
        keras.layers.Conv2D(2, 3, padding="same", dilation_rate=2, activation="elu"),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2), obs=(8, 8, 2)),
}


@pytest.mark.parametrize("name", SPLIT_MODELS)
@pytest.mark.parametrize("jit_compile", [True, False])
def test_split_after_the_first_layer_gives_the_whole_models_attributions(name, jit_compile, rng):
    model = SPLIT_MODELS[name]()
    obs = tuple(model.inputs[0].shape[1:])
    assert backend.split(model, obs).at_first_layer
    whole = keras.Model(model.inputs[0], model(model.inputs[0]))  # a functional wrapper is not split
    assert not backend.split(whole, obs).at_first_layer

    states, baseline = rng.normal(size=(7, *obs)), rng.normal(size=obs) * 0.5
    for target in (None, "all"):
        split = integrated_gradients(model, states, baseline=baseline, target=target, steps=16, refine=False,
                                     jit_compile=jit_compile)
        reference = integrated_gradients(whole, states, baseline=baseline, target=target, steps=16, refine=False,
                                         jit_compile=jit_compile)
        np.testing.assert_allclose(split.attributions, reference.attributions, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(split.outputs, reference.outputs, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(split.baseline_outputs, reference.baseline_outputs, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(split.targets, reference.targets)


def test_a_split_linear_model_stays_exact(rng):
    weights, bias = rng.normal(size=(5, 3)), rng.normal(size=3)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3), keras.layers.Activation("linear")])
    model.layers[0].set_weights([weights, bias])
    assert backend.split(model, (5,)).at_first_layer
    states, baseline = rng.normal(size=(10, 5)) * 3, rng.normal(size=5)
    result = integrated_gradients(model, states, baseline=baseline, target="all", steps=3, method="riemann_left")
    np.testing.assert_allclose(
        result.attributions, (states - baseline)[:, None, :] * weights.T[None], rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("model", [
    lambda: linear_model(np.ones((3, 2)), np.zeros(2)),  # functional
    lambda: _sequential(keras.layers.Normalization(mean=0.5, variance=4.0), keras.layers.Dense(2)),
    lambda: _sequential(keras.layers.Conv1D(2, 3, padding="causal"), keras.layers.Flatten(), obs=(5, 1)),
    lambda: _sequential(keras.layers.Dense(2)),  # one layer: nothing after it to split off
    lambda: mlp(),  # 4 inputs widened to 32: the path would carry more numbers after the layer
], ids=["functional", "normalization first", "causal Conv1D", "single layer", "widening first layer"])
def test_other_models_are_used_whole(model):
    model = model()
    assert not splitting.split_model(model, tuple(model.inputs[0].shape[1:])).at_first_layer


def test_a_split_that_does_not_reproduce_the_model_is_not_used(monkeypatch):
    model = small_cnn()
    assert splitting.split_model(model, (12, 12, 2)).at_first_layer
    wrong_head = lambda layer: (lambda x: layer.convolution_op(x, layer.kernel) + 1.0)  # noqa: E731
    monkeypatch.setattr(splitting, "_affine_part", wrong_head)  # a bias the layer does not have
    assert not splitting.split_model(model, (12, 12, 2)).at_first_layer
