"""Moments worth a look in an episode, found from its numbers: where the agent changed its mind,
where it was least sure, where a feature's influence flipped, and the largest rewards and penalties."""

from __future__ import annotations

import dataclasses

import numpy as np

PER_KIND = 5  # the most bookmarks of one kind; the strongest are kept, listed in time order


@dataclasses.dataclass(frozen=True)
class Bookmark:
    step: int
    kind: str   # "action change", "least certain", "sign flip", "reward", "penalty"
    text: str   # for people: "step 42: push left → push right"


def find_bookmarks(actions, attributions, rewards, feature_names, action_names=None,
                   probabilities=None) -> list[Bookmark]:
    """Bookmarks of one episode, sorted by step.

    Args:
        actions: (T,) discrete action indices, or (T, action_dim) continuous actions.
        attributions: (T, F) the explained output's attributions at each step.
        rewards: (T,).
        feature_names: (F,) strings.
        action_names: names of the discrete actions (None for continuous actions).
        probabilities: (T, n_actions) the policy's probabilities, for "least certain" (discrete only).
    """
    actions, rewards = np.asarray(actions), np.asarray(rewards, dtype=float)
    attributions = np.asarray(attributions, dtype=float).reshape(len(rewards), -1)
    found = (_action_changes(actions, action_names) + _least_certain(probabilities, action_names)
             + _sign_flips(attributions, feature_names) + _extreme_rewards(rewards))
    return sorted(found, key=lambda b: (b.step, b.kind))


def _strongest(steps: np.ndarray, strength: np.ndarray, count: int = PER_KIND) -> np.ndarray:
    """The ``count`` steps with the largest strength, in time order."""
    return np.sort(steps[np.argsort(-strength, kind="stable")[:count]])


def _action_changes(actions: np.ndarray, action_names) -> list[Bookmark]:
    if len(actions) < 2:
        return []
    if actions.ndim == 1 and action_names is not None:
        changed = np.flatnonzero(actions[1:] != actions[:-1]) + 1
        # an agent that alternates every step changes its mind less than one that holds an action for long
        held = np.array([t - _previous_change(actions, t) for t in changed])
        kept = set(_strongest(changed, held).tolist())
        return [Bookmark(int(t), "action change", f"step {t}: {action_names[int(actions[t])]} after "
                                                  f"{_steps(held[i])} of {action_names[int(actions[t - 1])]}")
                for i, t in enumerate(changed) if t in kept]
    first = actions.reshape(len(actions), -1)[:, 0]
    changed = np.flatnonzero(np.sign(first[1:]) != np.sign(first[:-1])) + 1
    swing = np.abs(first[changed] - first[changed - 1])
    return [Bookmark(int(t), "action change", f"step {t}: action {first[t - 1]:+.2f} → {first[t]:+.2f}")
            for t in _strongest(changed, swing)]


def _steps(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"


def _previous_change(actions: np.ndarray, t: int) -> int:
    earlier = np.flatnonzero(actions[:t] != actions[t - 1])
    return int(earlier[-1]) + 1 if earlier.size else 0


def _least_certain(probabilities, action_names) -> list[Bookmark]:
    if probabilities is None or action_names is None:
        return []
    top = np.asarray(probabilities, dtype=float).max(axis=1)
    steps = _strongest(np.arange(len(top)), -top)
    return [Bookmark(int(t), "least certain", f"step {t}: most likely action only {top[t]:.0%} "
                                              f"({action_names[int(np.argmax(probabilities[t]))]})")
            for t in steps if top[t] < 0.9]


def _sign_flips(attributions: np.ndarray, feature_names) -> list[Bookmark]:
    """Steps where a feature's attribution changes sign, both sides above 10% of its largest magnitude."""
    if len(attributions) < 2:
        return []
    scale = np.abs(attributions).max(axis=0, keepdims=True)
    before, after = attributions[:-1], attributions[1:]
    strong = (np.abs(before) > 0.1 * scale) & (np.abs(after) > 0.1 * scale)
    steps, features = np.nonzero(strong & (np.sign(before) != np.sign(after)))
    swing = np.abs(after[steps, features] - before[steps, features])
    order = np.argsort(-swing, kind="stable")[:PER_KIND]
    return [Bookmark(int(steps[i] + 1), "sign flip",
                     f"step {steps[i] + 1}: {feature_names[features[i]]} flips from "
                     f"{before[steps[i], features[i]]:+.2g} to {after[steps[i], features[i]]:+.2g}")
            for i in sorted(order, key=lambda i: steps[i])]


def _extreme_rewards(rewards: np.ndarray) -> list[Bookmark]:
    if len(rewards) == 0 or np.ptp(rewards) == 0:  # every step paid the same: nothing stands out
        return []
    typical = float(np.median(rewards))
    found = []
    for kind, sign in (("reward", 1.0), ("penalty", -1.0)):
        steps = np.flatnonzero(sign * (rewards - typical) > 0)
        for t in _strongest(steps, sign * rewards[steps], count=3):
            found.append(Bookmark(int(t), kind, f"step {t}: {kind} {rewards[t]:+.3g}"))
    return found
