"""Baselines for image observations: the neutral pictures IG measures a frame's influence from.

    "empty playfield": the median of the policy's own frames, pixel by pixel; moving objects are
        somewhere else in most frames, so the median keeps the walls and the score band and removes
        the ball and the paddles. What is attributed is then the objects themselves (the default).
    "black": all zeros, the common choice, which also credits the background for being there.
    "blurred state": each state blurred (a Gaussian, sigma 3 pixels): shapes are gone, brightness stays.
"""

from __future__ import annotations

import numpy as np

IMAGE_BASELINES = ("empty playfield", "black", "blurred state")
BLUR_SIGMA = 3.0


def blurred(states, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """Each image of states (N, ..., H, W) blurred over its last two axes, float32, same shape (edges reflected)."""
    states = np.asarray(states, np.float32)
    radius = int(3 * sigma)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    out = states
    for axis in (-2, -1):
        pad = [(0, 0)] * states.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect")
        length = out.shape[axis]
        out = sum(weight * np.take(padded, np.arange(i, i + length), axis=axis) for i, weight in enumerate(kernel))
    return out.astype(np.float32)


def empty_playfield(median_state, reference_states) -> np.ndarray:
    """The policy's median frame (*obs_shape,), from its sidecar or else from its reference states."""
    if median_state is not None:
        return np.asarray(median_state, np.float32)
    if reference_states is None or not len(reference_states):
        raise ValueError("the empty playfield needs the policy's own frames: a median state or reference states; "
                         "this policy has neither.")
    return np.median(np.asarray(reference_states, np.float32), axis=0)


def image_baseline(kind: str, states, median_state=None, reference_states=None) -> np.ndarray:
    """The baseline ``kind`` (one of IMAGE_BASELINES) for states (N, *obs): (*obs,) shared, or (N, *obs)."""
    states = np.asarray(states, np.float32)
    if kind == "empty playfield":
        return empty_playfield(median_state, reference_states)
    if kind == "black":
        return np.zeros(states.shape[1:], np.float32)
    if kind == "blurred state":
        return blurred(states)
    raise ValueError(f"unknown image baseline {kind!r}; expected one of {', '.join(IMAGE_BASELINES)}.")
