"""What the shipped environments' numbers mean, in words a person understands.

Feature names carry their units where the environment documents them; action names are plain
words ("push left"), so that charts and sentences read without a manual.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class EnvironmentInfo:
    feature_names: tuple[str, ...]
    action_names: tuple[str, ...]  # one per discrete action, or one per continuous action dimension
    continuous: bool = False


ENVIRONMENTS: dict[str, EnvironmentInfo] = {
    "CartPole-v1": EnvironmentInfo(
        ("cart position (m)", "cart velocity (m/s)", "pole angle (rad)", "pole angular velocity (rad/s)"),
        ("push left", "push right"),
    ),
    "LunarLander-v3": EnvironmentInfo(
        ("x position", "y position", "x velocity", "y velocity", "angle (rad)", "angular velocity",
         "left leg contact", "right leg contact"),
        ("do nothing", "fire left engine", "fire main engine", "fire right engine"),
    ),
    "Acrobot-v1": EnvironmentInfo(
        ("cos(upper link angle)", "sin(upper link angle)", "cos(lower link angle)", "sin(lower link angle)",
         "upper link angular velocity (rad/s)", "lower link angular velocity (rad/s)"),
        ("torque left", "no torque", "torque right"),
    ),
    "MountainCar-v0": EnvironmentInfo(
        ("car position (m)", "car velocity (m/s)"),
        ("accelerate left", "don't accelerate", "accelerate right"),
    ),
    "Pendulum-v1": EnvironmentInfo(
        ("cos(angle)", "sin(angle)", "angular velocity (rad/s)"),
        ("torque (N·m)",),
        continuous=True,
    ),
}


def feature_names(env_id: str, n_features: int) -> tuple[str, ...]:
    """The documented names for ``env_id`` where known, else ``obs[0]``, ``obs[1]``, ..."""
    known = ENVIRONMENTS.get(env_id)
    if known and len(known.feature_names) == n_features:
        return known.feature_names
    return tuple(f"obs[{i}]" for i in range(n_features))


def action_names(env_id: str, n_actions: int) -> tuple[str, ...]:
    known = ENVIRONMENTS.get(env_id)
    if known and len(known.action_names) == n_actions:
        return known.action_names
    return tuple(f"action {i}" for i in range(n_actions))
