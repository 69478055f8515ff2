"""An episode's observations, kept compactly while it is played."""

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

    @property
    def nbytes(self) -> int:
        """Bytes held by the kept observations and frames."""
        return sum(piece.nbytes for piece in self._pieces)
