"""Keras pieces that PyTorch policies are rebuilt from, with their weights set from a state_dict.

PyTorch stores a Linear's weight as (out, in) and a Conv2d's as (out, in, kh, kw) over channels-first
images; Keras wants (in, out) and (kh, kw, in, out) over channels-last ones. Images therefore enter
as (batch, C, H, W), are turned channels-last once, and turned back before they are flattened, so
that the first Linear after the convolutions sees its features in PyTorch's order.

A state_dict is wrapped in ``Weights``, which remembers the keys the rebuilt model took, so that a
reader can refuse a file with weights it did not place (a layer of an architecture it does not know).
"""

from __future__ import annotations

import keras
import numpy as np

from attribution.rl.errors import PolicyError

# PyTorch's activation classes, as Keras activations ("leaky_relu": PyTorch's slope of 0.01, not Keras's 0.2)
ACTIVATIONS = {"Tanh": "tanh", "ReLU": "relu", "ELU": "elu", "LeakyReLU": "leaky_relu", "Sigmoid": "sigmoid",
               "SiLU": "silu", "GELU": "gelu", "Softplus": "softplus", "Identity": None}
MAX_LINEARS = 32  # in one nn.Sequential: deeper than any policy network, and a bound on the work a file asks for


class Weights(dict):
    """A state_dict (key -> array) that records which keys were taken (``used``)."""

    def __init__(self, state: dict[str, np.ndarray]):
        super().__init__(state)
        self.used: set[str] = set()

    def unused(self, ignored: tuple[str, ...] = ()) -> list[str]:
        """The keys nothing took, less those starting with one of ``ignored``."""
        return [key for key in self if key not in self.used and not key.startswith(ignored)]


def take(state: dict[str, np.ndarray], key: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``state[key]`` as float32, checked against ``shape`` (None: any)."""
    if key not in state:
        raise PolicyError(f"the file has no {key!r}; its keys: {', '.join(list(state)[:12])}"
                          f"{', ...' if len(state) > 12 else ''}.")
    value = np.asarray(state[key], np.float32)
    if shape is not None and value.shape != tuple(shape):
        raise PolicyError(f"{key!r} has shape {value.shape}; expected {tuple(shape)}.")
    if isinstance(state, Weights):
        state.used.add(key)
    return value


def activate(x, activation: str | None):
    """x through a PyTorch activation given by its Keras name (None: unchanged)."""
    if activation is None:
        return x
    if activation == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.01)(x)  # nn.LeakyReLU's default
    return keras.layers.Activation(activation)(x)


def dense(x, state: dict, prefix: str, activation: str | None = None, name: str | None = None):
    """A PyTorch Linear ``prefix.weight`` (out, in) and ``prefix.bias`` (out,) applied to x (batch, in),
    then ``activation``."""
    weight = take(state, f"{prefix}.weight")
    if weight.ndim != 2 or weight.shape[1] != x.shape[-1]:
        raise PolicyError(f"{prefix}.weight has shape {weight.shape}; expected (out, {x.shape[-1]}).")
    bias = take(state, f"{prefix}.bias", (weight.shape[0],)) if f"{prefix}.bias" in state else None
    layer = keras.layers.Dense(weight.shape[0], use_bias=bias is not None, name=None if activation else name)
    layer.build((None, weight.shape[1]))
    layer.set_weights([weight.T] + ([bias] if bias is not None else []))
    return activate(layer(x), activation)


def mlp(x, state: dict, prefixes: list[str], activation: str | None):
    """Linear layers in turn, each followed by ``activation`` (a PyTorch nn.Sequential of Linear and activations)."""
    for prefix in prefixes:
        x = dense(x, state, prefix, activation)
    return x


def sequential_linears(state: dict, prefix: str) -> list[str]:
    """The Linear layers of an nn.Sequential at ``prefix``, in order: ``prefix.0``, ``prefix.2``, ..."""
    indices = sorted({int(key[len(prefix) + 1:].split(".")[0]) for key in state
                      if key.startswith(prefix + ".") and key.endswith(".weight")
                      and key[len(prefix) + 1:].split(".")[0].isdigit()})
    if len(indices) > MAX_LINEARS:
        raise PolicyError(f"{prefix} holds {len(indices)} Linear layers; a policy network here has at most "
                          f"{MAX_LINEARS}.")
    return [f"{prefix}.{index}" for index in indices]


def affine(x, scale: np.ndarray, offset: np.ndarray, name: str):
    """x (batch, n) * scale + offset, elementwise (scale, offset: (n,)), as one Dense layer."""
    scale, offset = np.asarray(scale, np.float32).reshape(-1), np.asarray(offset, np.float32).reshape(-1)
    if scale.shape != offset.shape or scale.shape[0] != x.shape[-1]:
        raise PolicyError(f"an action scale of shape {scale.shape} and offset of shape {offset.shape} do not fit "
                          f"{x.shape[-1]} action dimension(s).")
    layer = keras.layers.Dense(len(scale), name=name)
    layer.build((None, len(scale)))
    layer.set_weights([np.diag(scale), offset])
    return layer(x)


def channels_last(images):
    """(batch, C, H, W) -> (batch, H, W, C)."""
    return keras.layers.Permute((2, 3, 1))(images)


def conv(x, state: dict, prefix: str, stride: int, activation="relu"):
    """A PyTorch Conv2d (no padding) on channels-last x."""
    weight = take(state, f"{prefix}.weight")
    if weight.ndim != 4 or weight.shape[1] != x.shape[-1]:
        raise PolicyError(f"{prefix}.weight has shape {weight.shape}; expected (out, {x.shape[-1]}, kh, kw).")
    if any(size < kernel for size, kernel in zip(x.shape[1:3], weight.shape[2:], strict=True)):
        raise PolicyError(f"{prefix}: a {weight.shape[2]}x{weight.shape[3]} convolution does not fit images of "
                          f"{x.shape[1]}x{x.shape[2]}.")
    bias = take(state, f"{prefix}.bias", (weight.shape[0],))
    layer = keras.layers.Conv2D(weight.shape[0], weight.shape[2:], stride, activation=activation)
    layer.build((None, *x.shape[1:]))
    layer.set_weights([weight.transpose(2, 3, 1, 0), bias])
    return layer(x)


def flatten_channels_first(x):
    """Channels-last (batch, H, W, C) flattened in PyTorch's (C, H, W) order."""
    return keras.layers.Flatten()(keras.layers.Permute((3, 1, 2))(x))


def nature_cnn(images, state: dict, prefix: str):
    """The Nature DQN convolutions (32 8x8/4, 64 4x4/2, 64 3x3/1, ReLU) on channels-last images,
    at ``prefix.0``, ``prefix.2``, ``prefix.4``; returns the flattened features in PyTorch's order."""
    for index, stride in ((0, 4), (2, 2), (4, 1)):
        images = conv(images, state, f"{prefix}.{index}", stride)
    return flatten_channels_first(images)


def activation_name(torch_class: str, where: str) -> str | None:
    """A PyTorch activation class name ("ReLU", or "<class 'torch.nn.modules.activation.ReLU'>") as Keras's."""
    short = torch_class.rsplit(".", 1)[-1].strip("'>")
    if short not in ACTIVATIONS:
        raise PolicyError(f"{where}: activation {short!r} is not one this app rebuilds; known: "
                          f"{', '.join(sorted(ACTIVATIONS))}.")
    return ACTIVATIONS[short]
