"""An episode's observations, kept compactly: a frame stack keeps one new frame a step, while it is
played (``ObservationHistory``) and once it is recorded (``compact_stacks``)."""

from __future__ import annotations

import numpy as np


class ObservationHistory:
    """The observations of one episode in order, read like a list of them.

    An observation of three or more dimensions that is the one before it shifted along its first
    axis by one new frame (a frame stack, such as Atari's 4 x 84 x 84) keeps only that frame: 7 KB
    a Pong step instead of 28 KB. Any other observation is kept whole.

    len(h); h[t] -> (*obs_shape,); h[a:b] -> (n, *obs_shape); h.append(observation); h.clear().
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._pieces: list[np.ndarray] = []  # whole observations, or the frames of stacks
        self._where: list[tuple[int, int]] = []  # per observation: (first piece, frames stacked; 0 = whole)

    def append(self, observation) -> None:
        observation = np.asarray(observation)
        if self._continues_last_stack(observation):
            start, depth = self._where[-1]
            self._pieces.append(observation[-1].copy())  # a copy: a view would keep the whole stack alive
            self._where.append((start + 1, depth))
        elif observation.ndim >= 3:
            self._where.append((len(self._pieces), len(observation)))
            self._pieces.extend(frame.copy() for frame in observation)
        else:
            self._where.append((len(self._pieces), 0))
            self._pieces.append(observation.copy())

    def _continues_last_stack(self, observation: np.ndarray) -> bool:
        if not self._where or self._where[-1][1] != len(observation) or observation.ndim < 3:
            return False
        start, depth = self._where[-1]
        if start + depth != len(self._pieces) or self._pieces[start].shape != observation.shape[1:]:
            return False  # only the newest stack can grow by a frame
        return all(np.array_equal(observation[k], self._pieces[start + 1 + k]) for k in range(depth - 1))

    def _observation(self, t: int) -> np.ndarray:
        start, depth = self._where[t]
        return self._pieces[start] if depth == 0 else np.stack(self._pieces[start:start + depth])

    def __len__(self) -> int:
        return len(self._where)

    def __getitem__(self, index):
        if isinstance(index, slice):
            found = [self._observation(t) for t in range(*index.indices(len(self)))]
            return np.stack(found) if found else np.zeros((0,), np.float32)
        return self._observation(range(len(self))[index])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self[:], dtype=dtype)

    def to_array(self, dtype) -> np.ndarray:
        """(T, *obs_shape) as ``dtype``: a read-only ``stacked_view`` of the kept frames where every
        observation continued the first one's stack, else a new array."""
        depth = self._where[0][1] if self._where else 0
        if depth and self._where[-1] == (len(self) - 1, depth) and len(self._pieces) == len(self) - 1 + depth:
            return stacked_view(np.stack(self._pieces).astype(dtype, copy=False), depth)
        return np.asarray(self, dtype=dtype)

    @property
    def nbytes(self) -> int:
        """Bytes held by the kept observations and frames."""
        return sum(piece.nbytes for piece in self._pieces)


def stacked_view(frames: np.ndarray, depth: int) -> np.ndarray:
    """frames (T + depth - 1, *frame_shape) -> a read-only view (T, depth, *frame_shape) whose step t
    is frames[t:t + depth]: an episode of stacks in the memory of its frames."""
    view = np.lib.stride_tricks.as_strided(frames, (len(frames) - depth + 1, depth, *frames.shape[1:]),
                                           (frames.strides[0], *frames.strides))
    view.flags.writeable = False
    return view


def compact_stacks(observations: np.ndarray, rows_per_check: int = 256) -> np.ndarray:
    """(T, depth, *frame_shape) -> the same observations as a ``stacked_view`` where each continues the
    one before by one new frame (a frame stack: 7 KB a Pong step instead of 28 KB); anything else,
    or a view already, as it is."""
    observations = np.asarray(observations)
    if observations.ndim < 4 or len(observations) < 2 or observations.strides[0] == observations.strides[1]:
        return observations
    for first in range(0, len(observations) - 1, rows_per_check):  # in pieces: no full-size temporary
        rows = slice(first, min(first + rows_per_check, len(observations) - 1))
        later = slice(rows.start + 1, rows.stop + 1)
        if not np.array_equal(observations[later, :-1], observations[rows, 1:]):
            return observations
    return stacked_view(np.concatenate([observations[0], observations[1:, -1]]), observations.shape[1])


def kept_bytes(observations: np.ndarray) -> int:
    """The bytes ``observations`` hold: their frames' for a ``stacked_view``, else their own."""
    if observations.ndim >= 4 and len(observations) and observations.strides[0] == observations.strides[1]:
        return (len(observations) + observations.shape[1] - 1) * observations[0, 0].nbytes
    return observations.nbytes
