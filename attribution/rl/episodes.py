"""Episodes: what a policy did in its environment, saved and loaded (recording is ``rollout.py``'s).

    episode = record_episode(load_policy("CartPole-v1"), seed=0)
    save_episode(episode, "runs/cartpole.npz")
    same = load_episode("runs/cartpole.npz")

An episode file is one ``.npz`` (no pickle: it is read with ``allow_pickle=False``) holding the
arrays and a JSON metadata record; it is written atomically. Frames are kept PNG-encoded, in
memory as on disk (a LunarLander frame is about 8 KB instead of 720 KB raw).
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from attribution.rl.archives import EPISODE_LIMITS, MEGABYTE, ArchiveError, open_archive
from attribution.rl.environments import observation_space, step_limit
from attribution.rl.files import write_atomically
from attribution.rl.history import compact_stacks

FORMAT = "rl-attribution episode"
VERSION = 1


class EpisodeError(ValueError):
    """An episode file that cannot be read; the message says what was expected and what was found."""


class Frames:
    """A sequence of RGB frames stored PNG-encoded; ``frames[t]`` decodes one to uint8 (H, W, 3)."""

    def __init__(self, encoded: list[bytes] | None = None):
        self.encoded = list(encoded or [])

    def append(self, frame: np.ndarray) -> None:
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(frame, dtype=np.uint8)).save(buffer, format="PNG", compress_level=1)
        self.encoded.append(buffer.getvalue())

    def __getitem__(self, index: int) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(self.encoded[index])).convert("RGB"))

    def __len__(self) -> int:
        return len(self.encoded)

    @property
    def nbytes(self) -> int:
        return sum(map(len, self.encoded))


@dataclasses.dataclass
class Episode:
    """One episode. T = number of steps.

    observations: (T, *obs_shape), what the policy saw before each action: float32, or uint8 for images
        (frame stacks as a read-only view of their frames, ``history.compact_stacks``).
    actions: int64 (T,) or float32 (T, action_dim), what the environment received.
    rewards: float32 (T,).
    policy_outputs: float32 (T, n_outputs), the actor head (logits or mean) at each step.
    frames: Frames of length T (or empty), the picture before each action.
    attributions: float32 (T, ...) or None, filled in by whoever explains the episode.
    """

    env_id: str
    seed: int
    policy: str
    greedy: bool
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    policy_outputs: np.ndarray
    terminated: bool
    truncated: bool
    frames: Frames = dataclasses.field(default_factory=Frames)
    attributions: np.ndarray | None = None
    created: str = dataclasses.field(default_factory=lambda: datetime.datetime.now().isoformat(timespec="seconds"))
    settings: dict = dataclasses.field(default_factory=dict)  # how the attributions were computed

    def __post_init__(self) -> None:
        self.observations = compact_stacks(self.observations)

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def total_return(self) -> float:
        return float(self.rewards.sum(dtype=np.float64))


def as_action(action):
    """One stored action as the environment takes it: an int, or a float32 array."""
    return int(action) if np.ndim(action) == 0 else np.asarray(action, dtype=np.float32)


# ---- files ----

_ARRAYS = ("observations", "actions", "rewards", "policy_outputs")


def save_episode(episode: Episode, path) -> Path:
    """Write the episode to ``path`` (.npz) atomically; returns the path."""
    meta = {"format": FORMAT, "version": VERSION, "env_id": episode.env_id, "seed": episode.seed,
            "policy": episode.policy, "greedy": episode.greedy, "terminated": episode.terminated,
            "truncated": episode.truncated, "created": episode.created, "settings": episode.settings,
            "length": len(episode), "return": episode.total_return}
    arrays = {name: getattr(episode, name) for name in _ARRAYS}
    if episode.attributions is not None:
        arrays["attributions"] = episode.attributions.astype(np.float32)
    lengths = np.array([len(b) for b in episode.frames.encoded], dtype=np.int64)
    arrays["frame_lengths"] = lengths
    arrays["frame_bytes"] = np.frombuffer(b"".join(episode.frames.encoded), dtype=np.uint8)
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # frames are PNG already; the numbers are small
    return write_atomically(Path(path), buffer.getvalue())


# What one step may hold in a file, so that a file's arrays can be checked from their headers.
METADATA_BYTES = MEGABYTE            # the JSON record: names, settings, a few numbers
FRAME_BYTES_PER_STEP = 4 * MEGABYTE  # one PNG frame (a 600 x 400 RGB screen is 720 kB even uncompressed)
OUTPUTS_PER_STEP = 4096              # actions, policy outputs, attributions per observation feature
METADATA_FIELDS = ("env_id", "seed", "policy", "greedy", "terminated", "truncated", "length")


def load_episode(path_or_file, name: str | None = None) -> Episode:
    """Read an episode file (a path, or a binary file object and its ``name``). Raises EpisodeError on
    a damaged, foreign or oversized file, before inflating more than its arrays' headers allow."""
    name = Path(name or getattr(path_or_file, "name", None) or str(path_or_file)).name
    try:
        with open_archive(path_or_file, EPISODE_LIMITS, name) as archive:
            missing = [key for key in (*_ARRAYS, "metadata", "frame_lengths", "frame_bytes")
                       if f"{key}.npy" not in archive.members]
            if missing:
                raise EpisodeError(f"{name} is not an episode file: it lacks {', '.join(missing)}.")
            meta = _metadata(archive, name)
            length, obs_shape = _length_and_observation_shape(meta, name)
            contents = {key[:-4]: archive.read_npy(key, _header_check(name, key[:-4], length, obs_shape))
                        for key in archive.members if key.endswith(".npy") and key[:-4] != "metadata"}
    except ArchiveError as error:
        raise EpisodeError(str(error)) from None
    episode = Episode(
        env_id=str(meta["env_id"]),
        seed=int(meta["seed"]),
        policy=str(meta["policy"]),
        greedy=bool(meta["greedy"]),
        observations=contents["observations"],
        actions=contents["actions"],
        rewards=contents["rewards"],
        policy_outputs=contents["policy_outputs"],
        terminated=bool(meta["terminated"]),
        truncated=bool(meta["truncated"]),
        frames=_frames(contents, name),
        attributions=contents.get("attributions"),
        created=str(meta.get("created", "")),
        settings=dict(meta.get("settings") or {}),
    )
    _check_consistent(episode, name)
    return episode


def read_summary(path) -> dict:
    """An episode file's metadata record (env_id, policy, seed, length, return, created, ...), read
    without loading its arrays. Raises EpisodeError on a file that is not an episode."""
    name = Path(path).name
    try:
        with open_archive(path, EPISODE_LIMITS, name) as archive:
            return _metadata(archive, name)
    except ArchiveError as error:
        raise EpisodeError(str(error)) from None


def _metadata(archive, name: str) -> dict:
    def is_bytes(shape, dtype):
        if dtype != np.uint8 or len(shape) != 1 or shape[0] > METADATA_BYTES:
            raise EpisodeError(f"{name}'s metadata must be at most {METADATA_BYTES:,} bytes of JSON; "
                               f"its header announces {dtype} of shape {shape}.")

    if "metadata.npy" not in archive.members:
        raise EpisodeError(f"{name} is not an episode file: it has no metadata.")
    try:
        meta = json.loads(archive.read_npy("metadata.npy", is_bytes).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EpisodeError(f"{name} is not an episode file: its metadata is unreadable ({error}).") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise EpisodeError(f"{name} is not an episode file (its metadata names no {FORMAT!r} format).")
    if meta.get("version") != VERSION:
        raise EpisodeError(f"{name} is episode format version {meta.get('version')!r}; "
                           f"this app reads version {VERSION}.")
    missing = [key for key in METADATA_FIELDS if key not in meta]
    if missing:
        raise EpisodeError(f"{name}'s metadata lacks {', '.join(missing)}.")
    return meta


def _length_and_observation_shape(meta: dict, name: str) -> tuple[int, tuple[int, ...]]:
    """The episode's length, checked against its environment's step limit, and the environment's
    observation shape: what the arrays' headers must fit."""
    env_id, length = meta.get("env_id"), meta.get("length")
    space = observation_space(env_id) if isinstance(env_id, str) else None
    if space is None:
        raise EpisodeError(f"{name} was recorded in {env_id!r}, which is not an installed Gymnasium environment.")
    limit = step_limit(env_id)
    if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= limit:
        raise EpisodeError(f"{name} says it is {length!r} steps long; an episode of {env_id} lasts at most "
                           f"{limit:,} steps.")
    return length, space.shape


def _header_check(name: str, field: str, length: int, obs_shape: tuple):
    """``check(shape, dtype)`` for one array, from its .npy header, before its data is read."""
    def check(shape, dtype):
        if field == "observations":
            fits = shape == (length, *obs_shape)
            expected = f"shape {(length, *obs_shape)}"
        elif field == "frame_bytes":
            fits = dtype == np.uint8 and len(shape) == 1 and shape[0] <= length * FRAME_BYTES_PER_STEP
            expected = f"bytes, at most {FRAME_BYTES_PER_STEP // MEGABYTE} MB of PNG per step,"
        elif field == "frame_lengths":
            fits = np.issubdtype(dtype, np.integer) and shape in ((length,), (0,))
            expected = f"{length} integers (or none)"
        else:
            per_step = OUTPUTS_PER_STEP * max(1, math.prod(obs_shape)) if field == "attributions" else OUTPUTS_PER_STEP
            fits = len(shape) >= 1 and shape[0] == length and math.prod(shape) <= max(length, 1) * per_step
            expected = f"{length} rows of at most {per_step:,} numbers each"
        if not fits:
            raise EpisodeError(f"{name} has inconsistent arrays: {field} has shape {shape} and dtype {dtype}; "
                               f"expected {expected} for its {length} steps.")
    return check


def _frames(contents: dict, name: str) -> Frames:
    lengths, data = contents["frame_lengths"], contents["frame_bytes"]
    if (
        lengths.ndim != 1
        or data.ndim != 1
        or data.dtype != np.uint8
        or (lengths < 0).any()
        or lengths.sum() != len(data)
    ):
        raise EpisodeError(
            f"{Path(name).name} has damaged frames: {int(lengths.sum())} bytes announced, {len(data)} stored."
        )
    ends = np.cumsum(lengths)
    raw = data.tobytes()
    return Frames([raw[end - length:end] for end, length in zip(ends, lengths, strict=True)])


def _check_consistent(episode: Episode, name: str) -> None:
    n = len(episode.actions)
    checks = [
        ("observations", episode.observations, np.number, 2),
        ("rewards", episode.rewards, np.floating, 1),
        ("policy_outputs", episode.policy_outputs, np.floating, 2),
        ("actions", episode.actions, np.number, 1),
    ]
    for field, array, kind, min_rank in checks:
        if not np.issubdtype(array.dtype, kind) or array.ndim < min_rank or len(array) != n:
            raise EpisodeError(f"{Path(name).name} has inconsistent arrays: {field} has shape {array.shape} and dtype "
                               f"{array.dtype}; expected {n} numeric rows (one per action).")
    if len(episode.frames) not in (0, n):
        raise EpisodeError(f"{Path(name).name} has {len(episode.frames)} frames for {n} steps.")
    if episode.attributions is not None and len(episode.attributions) != n:
        raise EpisodeError(f"{Path(name).name} has attributions for {len(episode.attributions)} steps, not {n}.")
    if np.issubdtype(episode.observations.dtype, np.floating) and not np.isfinite(episode.observations).all():
        raise EpisodeError(f"{Path(name).name} has NaN or inf observations.")
