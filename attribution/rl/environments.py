"""The environments: how each is made for its policy (``make_env``), and what its numbers mean in
words a person understands.

Feature names carry their units where the environment documents them; action names are plain
words ("push left"), so that charts and sentences read without a manual. Adding an environment
with another kind of observation means one ``EnvironmentInfo`` here: its wrappers and its names.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from attribution.engine.groups import FeatureGroups
from attribution.rl import highway
from attribution.rl.pong import PongObjects

try:  # ale-py's wheel ships the Atari ROMs; registering adds the ALE/ ids to gymnasium's registry
    import ale_py

    gym.register_envs(ale_py)
except ImportError:  # without it the Atari environments are simply not installed
    pass

# highway-env draws off screen by itself; SDL_VIDEODRIVER=dummy would make its pictures black
try:  # highway-env registers highway-fast-v0 and its other roads
    import highway_env

    gym.register_envs(highway_env)
except ImportError:
    pass


@dataclasses.dataclass(frozen=True)
class Phrase:
    """What a feature's value means in words: ``below`` when value < pivot, else ``above``."""
    below: str
    above: str
    pivot: float = 0.0

    def describe(self, value: float) -> str:
        return self.below if value < self.pivot else self.above


@dataclasses.dataclass(frozen=True)
class EnvironmentInfo:
    feature_names: tuple[str, ...]
    action_names: tuple[str, ...]  # one per discrete action, or one per continuous action dimension
    phrases: tuple[Phrase, ...] = ()  # one per feature, for plain-language readings
    continuous: bool = False
    wrappers: tuple[Callable[[gym.Env], gym.Env], ...] = ()  # applied in order after gym.make
    make_kwargs: tuple[tuple[str, object], ...] = ()  # passed to gym.make
    frames: tuple[str, ...] = ()  # image observations (frames, height, width): each stacked frame's name
    parts: Callable[[], object] | None = None  # what the bars show, where not the features (see observation_parts)
    ends_in_crash: bool = False  # an episode that terminates (rather than running out of time) crashed


def _atari(env: gym.Env) -> gym.Env:
    """DeepMind's Atari pipeline: frame skip 4 (max of the last two), 84x84 grayscale, up to 30 no-ops."""
    return gym.wrappers.AtariPreprocessing(env, frame_skip=4, noop_max=30, screen_size=84, grayscale_obs=True)


def _stack4(env: gym.Env) -> gym.Env:
    return gym.wrappers.FrameStackObservation(env, 4)


ENVIRONMENTS: dict[str, EnvironmentInfo] = {
    "CartPole-v1": EnvironmentInfo(
        ("cart position (m)", "cart velocity (m/s)", "pole angle (rad)", "pole angular velocity (rad/s)"),
        ("push left", "push right"),
        (Phrase("the cart is left of centre", "the cart is right of centre"),
         Phrase("the cart moves left", "the cart moves right"),
         Phrase("the pole leans left", "the pole leans right"),
         Phrase("the pole is falling left", "the pole is falling right")),
    ),
    "LunarLander-v3": EnvironmentInfo(
        ("x position", "y position", "x velocity", "y velocity", "angle (rad)", "angular velocity",
         "left leg contact", "right leg contact"),
        ("do nothing", "fire left engine", "fire main engine", "fire right engine"),
        (Phrase("the lander is left of the pad", "the lander is right of the pad"),
         Phrase("the lander is below the pad", "the lander is above the pad"),
         Phrase("it drifts left", "it drifts right"),
         Phrase("it is falling", "it is rising"),
         Phrase("it is tilted clockwise", "it is tilted anticlockwise"),
         Phrase("it is turning clockwise", "it is turning anticlockwise"),
         Phrase("the left leg is in the air", "the left leg touches the ground", 0.5),
         Phrase("the right leg is in the air", "the right leg touches the ground", 0.5)),
    ),
    "Acrobot-v1": EnvironmentInfo(
        ("cos(upper link angle)", "sin(upper link angle)", "cos(lower link angle)", "sin(lower link angle)",
         "upper link angular velocity (rad/s)", "lower link angular velocity (rad/s)"),
        ("torque left", "no torque", "torque right"),
        (Phrase("the upper link points upwards", "the upper link hangs downwards"),
         Phrase("the upper link is turned clockwise", "the upper link is turned anticlockwise"),
         Phrase("the lower link is folded back", "the lower link is in line with the upper"),
         Phrase("the lower link is bent clockwise", "the lower link is bent anticlockwise"),
         Phrase("the upper link swings clockwise", "the upper link swings anticlockwise"),
         Phrase("the lower link swings clockwise", "the lower link swings anticlockwise")),
    ),
    "MountainCar-v0": EnvironmentInfo(
        ("car position (m)", "car velocity (m/s)"),
        ("accelerate left", "don't accelerate", "accelerate right"),
        (Phrase("the car is on the left slope", "the car is on the right slope", -0.52),
         Phrase("the car moves left", "the car moves right")),
    ),
    "Pendulum-v1": EnvironmentInfo(
        ("cos(angle)", "sin(angle)", "angular velocity (rad/s)"),
        ("torque (N·m)",),
        (Phrase("the pendulum hangs below the axle", "the pendulum is above the axle"),
         Phrase("it leans clockwise", "it leans anticlockwise"),
         Phrase("it swings clockwise", "it swings anticlockwise")),
        continuous=True,
    ),
    # Pong's ALE actions: RIGHT moves the agent's (right, green) paddle up, LEFT moves it down.
    "ALE/Pong-v5": EnvironmentInfo(
        (),
        ("stay", "fire", "move up", "move down", "move up and fire", "move down and fire"),
        wrappers=(_atari, _stack4),
        make_kwargs=(("frameskip", 1),),  # AtariPreprocessing skips frames itself; v5's sticky actions stay
        frames=("3 steps ago", "2 steps ago", "1 step ago", "now"),
        parts=PongObjects,
    ),
    "highway-fast-v0": EnvironmentInfo(
        highway.FEATURE_NAMES,
        ("change lane left", "keep going", "change lane right", "speed up", "slow down"),
        wrappers=(highway.ego_at_origin,),
        make_kwargs=(("config", highway.CONFIG),),
        parts=highway.Vehicles,
        ends_in_crash=True,
    ),
}


def make_env(env_id: str, render_mode: str | None = None) -> gym.Env:
    """The environment a policy for ``env_id`` acts in: ``gym.make`` and the wrappers its observations
    need. ``render_mode="rgb_array"`` makes ``env.render()`` return the frame, uint8 (H, W, 3).

    Raises ValueError when ``env_id`` is not an installed Gymnasium environment.
    """
    if not isinstance(env_id, str) or env_id not in gym.registry:
        raise ValueError(f"unknown environment id {env_id!r}: it is not an installed Gymnasium environment.")
    info = ENVIRONMENTS.get(env_id, EnvironmentInfo((), ()))
    env = gym.make(env_id, render_mode=render_mode, **dict(info.make_kwargs))
    for wrap in info.wrappers:
        env = wrap(env)
    return env


@functools.lru_cache(maxsize=64)
def observation_space(env_id) -> gym.Space | None:
    """The observation space of the environment ``make_env(env_id)`` gives, or None where there is none."""
    try:
        env = make_env(env_id)
    except Exception:  # not installed, or its dependencies are missing
        return None
    space = env.observation_space
    env.close()
    return space


DEFAULT_STEP_LIMIT = 100_000  # an environment registered without a time limit: as long as any shipped one, and more


def step_limit(env_id: str) -> int:
    """The most steps an episode of ``env_id`` lasts (its TimeLimit), for checking files against."""
    return gym.spec(env_id).max_episode_steps or DEFAULT_STEP_LIMIT


def image_shape(env_id: str) -> tuple[int, int, int] | None:
    """(frames, height, width) where ``env_id``'s observations are stacked images, else None."""
    known = ENVIRONMENTS.get(env_id)
    space = observation_space(env_id) if known and known.frames else None
    return tuple(space.shape) if space is not None and len(space.shape) == 3 else None


def feature_names(env_id: str, n_features: int) -> tuple[str, ...]:
    """The documented names for ``env_id`` where known (``now, row 3, column 7`` for a pixel), else
    ``obs[0]``, ``obs[1]``, ..."""
    known = ENVIRONMENTS.get(env_id)
    if known and len(known.feature_names) == n_features:
        return known.feature_names
    shape = image_shape(env_id)
    if shape and int(np.prod(shape)) == n_features:
        return tuple(f"{frame}, row {row}, column {column}" for frame in known.frames
                     for row in range(shape[1]) for column in range(shape[2]))
    return tuple(f"obs[{i}]" for i in range(n_features))


def phrases(env_id: str, names: tuple[str, ...]) -> tuple[Phrase, ...]:
    """Plain-language phrases for the features, or ones built from the names (``obs[2] is low``)."""
    known = ENVIRONMENTS.get(env_id)
    if known and known.feature_names == tuple(names):
        return known.phrases
    return tuple(Phrase(f"{name} is negative", f"{name} is positive") for name in names)


@dataclasses.dataclass(frozen=True)
class VectorFeatures:
    """The parts of a vector observation are its features: each its own group, read by its Phrase."""

    names: tuple[str, ...]
    phrases: tuple[Phrase, ...]
    kind = "feature"

    def groups(self, observations) -> FeatureGroups:
        return FeatureGroups.identity(self.names, np.shape(observations)[1:])

    def present(self, observation) -> np.ndarray:
        """Every feature gets its bar: bool (F,)."""
        return np.ones(len(self.names), bool)

    def descriptions(self, observation) -> list[str]:
        """One clause per feature, with ``{value}`` where its attribution goes: "the pole leans right ({value})"."""
        values = np.asarray(observation, dtype=float).reshape(-1)
        return [f"{phrase.describe(value)} ({{value}})" for phrase, value in zip(self.phrases, values, strict=True)]


def observation_parts(env_id: str, feature_names: tuple[str, ...]):
    """What the bars, sentences, timelines and exports of ``env_id`` are about: its features, or
    (Pong) the objects on its screen. Each has ``names``, ``kind`` ("feature" or "object"),
    ``groups(observations)`` (a FeatureGroups) and ``descriptions(observation)``."""
    known = ENVIRONMENTS.get(env_id)
    if known and known.parts:
        return known.parts()
    return VectorFeatures(tuple(feature_names), phrases(env_id, tuple(feature_names)))


def action_names(env_id: str, n_actions: int) -> tuple[str, ...]:
    known = ENVIRONMENTS.get(env_id)
    if known and len(known.action_names) == n_actions:
        return known.action_names
    return tuple(f"action {i}" for i in range(n_actions))
