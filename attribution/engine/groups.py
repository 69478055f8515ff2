"""Feature groups: named parts of an observation whose attributions are added up together.

    groups = FeatureGroups.from_masks(("ball", "paddle"), masks)       # masks bool (N, 2, *obs_shape)
    result = integrated_gradients(model, states, groups=groups, attributions=False)
    result.group_sums                                                  # (N, 3): ball, paddle, everything else

A pixel agent's groups are the objects on its screen, found per state; a driving agent's are the
vehicles; a vector observation's are its features (``identity``). The groups partition the
features, every feature in exactly one, so the group sums add up to the total attribution and
completeness holds for them as it does for the features. ``integrated_gradients`` adds them up on
the device, next to the attributions, and can hand back the sums alone.
"""

from __future__ import annotations

import dataclasses

import numpy as np

REST = "everything else"


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureGroups:
    """names: (G,). labels: int32, each feature's group in [0, G): (*obs_shape,) for groups shared by
    all states, or (N, *obs_shape), one partition per state."""

    names: tuple[str, ...]
    labels: np.ndarray

    def __post_init__(self):
        labels = np.asarray(self.labels)
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"group labels must be integers; received dtype {labels.dtype}.")
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.names)):
            raise ValueError(f"group labels must lie in [0, {len(self.names)}) for {len(self.names)} groups; "
                             f"received values from {labels.min()} to {labels.max()}.")
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "labels", labels.astype(np.int32, copy=False))

    @classmethod
    def identity(cls, feature_names, obs_shape: tuple | None = None) -> FeatureGroups:
        """One group per feature (in row-major order over ``obs_shape``, by default (F,)): group sums are
        the attributions."""
        labels = np.arange(len(feature_names), dtype=np.int32)
        return cls(tuple(feature_names), labels.reshape(obs_shape or labels.shape))

    @classmethod
    def from_masks(cls, names, masks, per_state: bool = False, rest: str = REST) -> FeatureGroups:
        """Groups from disjoint boolean masks, (G, *obs_shape), or (N, G, *obs_shape) with ``per_state``;
        the features no mask covers form one more group, ``rest``. Raises ValueError where masks overlap."""
        masks = np.asarray(masks, bool)
        names = tuple(names)
        axis = 1 if per_state else 0
        if masks.ndim <= axis or masks.shape[axis] != len(names):
            raise ValueError(f"need one mask per group name ({len(names)}); received masks of shape {masks.shape}.")
        covered = masks.sum(axis=axis)
        if (covered > 1).any():
            where = tuple(int(i) for i in np.argwhere(covered > 1)[0])
            raise ValueError(f"group masks must not overlap; a feature at {where} is in {int(covered[where])} groups.")
        labels = np.where(covered == 0, len(names), np.argmax(masks, axis=axis)).astype(np.int32)
        return cls((*names, rest), labels)

    def for_states(self, n: int, obs_shape: tuple) -> np.ndarray:
        """The labels checked against N states of ``obs_shape``: int32 (1 or N, *obs_shape)."""
        obs_shape = tuple(obs_shape)
        if self.labels.shape == obs_shape:
            return self.labels[None]
        if self.labels.shape == (n, *obs_shape):
            return self.labels
        raise ValueError(f"group labels must have shape {obs_shape} (shared by all states) or {(n, *obs_shape)} "
                         f"(one partition per state); received shape {self.labels.shape}.")

    def sums(self, attributions: np.ndarray) -> np.ndarray:
        """Group sums of attributions (N, *obs_shape) -> float64 (N, G), added up on the host."""
        n = len(attributions)
        labels = np.broadcast_to(self.for_states(n, attributions.shape[1:]), attributions.shape).reshape(n, -1)
        flat = attributions.reshape(n, -1).astype(np.float64)
        offsets = (np.arange(n) * len(self.names))[:, None]
        return np.bincount((labels + offsets).ravel(), flat.ravel(), n * len(self.names)).reshape(n, -1)

