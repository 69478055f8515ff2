"""Small networks whose Integrated Gradients are known in closed form (Sundararajan et al., 2017).

Used by the "How IG works" page and by the tests.
"""

from __future__ import annotations

import keras
import numpy as np


def paper_network_1() -> keras.Model:
    """f1(x1, x2) = ReLU(ReLU(x1) - 1 - ReLU(x2)), the IG paper's example (section 2.2).
    At x = (3, 1) with baseline (0, 0), IG = (1.5, -0.5)."""
    x = keras.Input((2,), name="x")
    out = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant([[1.0], [-1.0]]),
                             bias_initializer=keras.initializers.Constant(-1.0))(keras.layers.ReLU()(x))
    return keras.Model(x, keras.layers.ReLU()(out), name="paper_f1")


def paper_network_2() -> keras.Model:
    """f2(x1, x2) = ReLU(ReLU(x1 - 1) - ReLU(x2)): equal to f1 at every input, built differently
    (the -1 moves inside the first ReLU). Methods that are not implementation invariant tell them apart."""
    x = keras.Input((2,), name="x")
    shifted = keras.layers.Dense(2, kernel_initializer=keras.initializers.Identity(),
                                 bias_initializer=keras.initializers.Constant([-1.0, 0.0]))(x)
    out = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant([[1.0], [-1.0]]),
                             bias_initializer="zeros")(keras.layers.ReLU()(shifted))
    return keras.Model(x, keras.layers.ReLU()(out), name="paper_f2")


def linear_model(weights: np.ndarray, bias: np.ndarray) -> keras.Model:
    """F(x) = x @ weights + bias; weights (n_features, n_outputs), bias (n_outputs,)."""
    x = keras.Input((weights.shape[0],), name="x")
    layer = keras.layers.Dense(weights.shape[1], kernel_initializer=keras.initializers.Constant(weights),
                               bias_initializer=keras.initializers.Constant(bias))
    return keras.Model(x, layer(x), name="linear")
