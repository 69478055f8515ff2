"""The model as tail(head(x)) with head affine, so the engine can integrate after the first layer.

Where the model is a ``keras.Sequential`` whose first layer is a Dense or convolution layer,
head(x) = W x + b is that layer before its activation and tail is everything after. Since head is
affine, head((1 - a) x' + a x) = (1 - a) head(x') + a head(x), and W's transpose is the same at
every point, so IG at the input is

    (x - x') * W^T sum_s weights[s] * dF/dz at z = (1 - alphas[s]) head(x') + alphas[s] head(x).

The engine runs head on each path's two ends only, builds the path points after it, and pulls
their summed gradient back through W^T once per path instead of once per point: the same
attributions, without the first layer's work on every point (half of the Nature-DQN CNN's work,
BENCHMARKS.md). Only where head gives no more numbers per row than the observation has: after a
widening layer the path moves more data than the layer's work saves (the 4-64-64-2 MLP was 4%
slower on JAX). Any other model splits as head = identity, tail = the model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import keras
import numpy as np
from keras import ops


@dataclasses.dataclass(frozen=True)
class Split:
    """head: (B, *obs) -> (B, *hidden), affine; tail: (B, *hidden) -> float32 (B, n_outputs)."""

    head: Callable
    tail: Callable
    at_first_layer: bool


def split_model(model: keras.Model, obs_shape: tuple) -> Split:
    """Split ``model`` after its first layer's affine map where that narrows the rows, checked on
    random inputs: a split that does not reproduce the model (a layer this does not know) is not used."""
    found = _split_first_layer(model)
    probe = np.random.default_rng(0).normal(size=(3, *obs_shape)).astype(np.float32)
    if found is not None and _narrows(found, probe) and _reproduces(model, found, probe):
        return found

    def identity(x):  # functions, not lambdas: autograph cannot read two lambdas on one line, and says so
        return x

    def whole(x):
        return _float32(model(x, training=False))

    return Split(head=identity, tail=whole, at_first_layer=False)


def _split_first_layer(model) -> Split | None:
    if not isinstance(model, keras.Sequential) or len(model.layers) < 2:
        return None
    first, rest = model.layers[0], model.layers[1:]
    head = _affine_part(first)
    if head is None:
        return None

    def tail(z):
        y = first.activation(z) if first.activation is not None else z
        for layer in rest:
            y = layer(y, training=False)
        return _float32(y)

    return Split(head=head, tail=tail, at_first_layer=True)


def _affine_part(layer) -> Callable | None:
    """``layer``'s call without its activation, for a plain Dense or convolution layer; else None."""
    if getattr(layer, "lora_enabled", False) or getattr(layer, "quantization_mode", None):
        return None
    if type(layer) is keras.layers.Dense:
        return lambda x: ops.matmul(x, layer.kernel) + (layer.bias if layer.bias is not None else 0.0)
    if type(layer) in (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D) and layer.padding != "causal":
        def convolution(x):
            z = layer.convolution_op(x, layer.kernel)
            if not layer.use_bias:
                return z
            channels_last = layer.data_format == "channels_last"
            shape = (
                (1,) * (layer.rank + 1) + (layer.filters,) if channels_last else (1, layer.filters) + (1,) * layer.rank
            )
            return z + ops.reshape(layer.bias, shape)
        return convolution
    return None


def _narrows(found: Split, probe: np.ndarray) -> bool:
    try:
        hidden = found.head(probe)
    except Exception:  # an input the layer cannot take: the model is used whole (and fails with its own message)
        return False
    return math.prod(hidden.shape[1:]) <= math.prod(probe.shape[1:])


def _reproduces(model, found: Split, probe: np.ndarray) -> bool:
    try:
        expected = ops.convert_to_numpy(_float32(model(probe, training=False)))
        got = ops.convert_to_numpy(found.tail(found.head(probe)))
    except Exception:  # a layer that takes other arguments: the model is used whole
        return False
    scale = max(1.0, float(np.abs(expected).max()))
    return got.shape == expected.shape and np.allclose(got, expected, rtol=1e-4, atol=1e-5 * scale)


def _float32(outputs):
    return ops.cast(outputs, "float32")
