"""The vehicles around the driving agent (highway-env's ``highway-fast-v0``): what its bars are about.

The observation is highway-env's Kinematics table, (5 vehicles, 5 features), in metres and metres
per second: the ego car first, then the four nearest vehicles by distance. Each row is presence
(1, or 0 for an empty slot, whose other numbers are 0), x (along the road, ahead positive), y
(across it, right positive: lanes are 4 m apart), vx and vy. The other vehicles' numbers are
relative to the ego car; the ego car sits at the origin of its own frame (x = 0), with its lateral
position and its own speed. Each vehicle slot is one feature group.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from attribution.engine.groups import FeatureGroups

SLOTS = ("ego car", "vehicle 1", "vehicle 2", "vehicle 3", "vehicle 4")   # vehicle k: the k-th nearest
FEATURES = ("present", "x (m)", "y (m)", "vx (m/s)", "vy (m/s)")
FEATURE_NAMES = tuple(f"{slot}: {feature}" for slot in SLOTS for feature in FEATURES)
PRESENT, X, Y, VX, VY = range(len(FEATURES))
LANE_WIDTH = 4.0  # metres
NEAR = 10.0       # metres between the centres of two cars in one lane (5 m long each) that make a near miss
# highway-env's rendering (its config's defaults): 5.5 pixels a metre, the ego car at 30% of the width and
# half the height of the 600 x 150 picture, cars 5 m long and 2 m wide
PIXELS_PER_METRE, EGO_PIXEL, CAR_SIZE = 5.5, (180.0, 75.0), (5.0, 2.0)
CONFIG = {"observation": {"type": "Kinematics", "vehicles_count": len(SLOTS), "features": ["presence", "x", "y",
                                                                                          "vx", "vy"],
                          "normalize": False, "absolute": False, "order": "sorted"}}


def ego_at_origin(env: gym.Env) -> gym.Env:
    """highway-env gives the ego car's absolute distance along the road, which grows without end; the
    others are relative to the ego car, so it is put at the origin of its own frame (x = 0)."""

    def observe(observation):
        observation = np.array(observation, np.float32)
        observation[0, X] = 0.0
        return observation

    return gym.wrappers.TransformObservation(env, observe, env.observation_space)


def where(row: np.ndarray) -> str:
    """Where a vehicle is, from its row relative to the ego car: "14 m ahead in its lane, 3 m/s slower"."""
    distance = abs(float(row[X]))
    lanes = round(float(row[Y]) / LANE_WIDTH)
    side = "right" if lanes > 0 else "left"
    lane = ("in its lane" if lanes == 0 else f"in the lane to its {side}" if abs(lanes) == 1
            else f"{abs(lanes)} lanes to its {side}")
    speed = float(row[VX])
    relative = ("at its speed" if abs(speed) < 0.5 else f"{abs(speed):.0f} m/s {'faster' if speed > 0 else 'slower'}")
    return f"{distance:.0f} m {'ahead' if row[X] >= 0 else 'behind'}{' ' if abs(lanes) < 2 else ', '}{lane}, {relative}"


class Vehicles:
    """The parts of a driving observation a person talks about: the ego car and the vehicles near it."""

    kind = "object"
    names = SLOTS

    def groups(self, observations) -> FeatureGroups:
        """One group per vehicle slot: a row of the table."""
        labels = np.repeat(np.arange(len(SLOTS), dtype=np.int32)[:, None], len(FEATURES), axis=1)
        return FeatureGroups(SLOTS, labels)

    def present(self, observation) -> np.ndarray:
        """Which slots hold a vehicle, bool (5,): an empty slot gets no bar."""
        return np.asarray(observation)[:, PRESENT] > 0.5

    def boxes(self, observation) -> dict[str, tuple[float, float, float, float]]:
        """Each present vehicle's box on the rendered picture, (x0, y0, x1, y1) in pixels, by slot."""
        table = np.asarray(observation, dtype=float)
        half_length, half_width = (PIXELS_PER_METRE * size / 2 for size in CAR_SIZE)
        found = {}
        for slot, row in zip(SLOTS, table, strict=True):
            if row[PRESENT] > 0.5:
                across = 0.0 if slot == SLOTS[0] else row[Y]  # the ego car's y is its place on the road: it is centred
                x, y = EGO_PIXEL[0] + PIXELS_PER_METRE * row[X], EGO_PIXEL[1] + PIXELS_PER_METRE * across
                found[slot] = (x - half_length, y - half_width, x + half_length, y + half_width)
        return found

    def near_misses(self, observations, count: int = 5) -> list[tuple[int, str]]:
        """The steps where another car came closest in the ego car's lane (nearer than ``NEAR`` metres,
        each approach once), the ``count`` closest in time order: [(step, "step 12: a car 6 m ahead ...")]."""
        tables = np.asarray(observations, dtype=float)
        others = tables[:, 1:]
        in_lane = (others[..., PRESENT] > 0.5) & (np.abs(others[..., Y]) < LANE_WIDTH / 2)
        gaps = np.where(in_lane, np.abs(others[..., X]), np.inf)
        nearest = gaps.min(axis=1)
        padded = np.concatenate([[np.inf], nearest, [np.inf]])
        closest = np.flatnonzero((nearest < NEAR) & (nearest <= padded[:-2]) & (nearest < padded[2:]))
        chosen = np.sort(closest[np.argsort(nearest[closest], kind="stable")[:count]])
        return [(int(t), f"step {t}: the car {where(others[t, int(np.argmin(gaps[t]))])}") for t in chosen]

    def descriptions(self, observation) -> list[str]:
        """One noun phrase per slot, with ``{value}`` where its attribution goes: "the car 14 m ahead in
        its lane, 3 m/s slower ({value})"."""
        table = np.asarray(observation, dtype=float)
        ego = table[0]
        own = (f"its own speed and place ({{value}}), {ego[VX]:.0f} m/s in lane "
               f"{round(ego[Y] / LANE_WIDTH) + 1} from the left")
        return [own] + [f"the car {where(row)} ({{value}})" if row[PRESENT] > 0.5 else "an empty slot ({value})"
                        for row in table[1:]]
