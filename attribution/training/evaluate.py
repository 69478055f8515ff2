"""Re-measure a shipped policy: mean and std of its return over evaluation episodes.

    python -m attribution.training.evaluate CartPole-v1 --episodes 100

Evaluation seeds start at EVAL_SEED (far from any training seed), so the figures are on
episodes the policy never trained on. Actions are greedy (the argmax, or the mean).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from attribution.rl.rollout import EpisodeStepper, greedy_rollouts  # noqa: E402

EVAL_SEED = 1_000_000


def evaluate(policy, env_id: str, episodes: int, first_seed: int = EVAL_SEED,
             keep_every: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Greedy returns (episodes,) and every ``keep_every``-th visited observation (T, *obs_shape).

    ``policy`` is anything with ``act(observation)``."""
    return greedy_rollouts(policy, env_id, episodes=episodes, first_seed=first_seed, keep_every=keep_every)


def crash_rate(policy, env_id: str, episodes: int, first_seed: int = EVAL_SEED) -> float:
    """The share of greedy episodes that end by terminating (a crash, where ``ends_in_crash``) rather than
    running out of time."""
    crashed = 0
    with EpisodeStepper(env_id, first_seed) as run:
        for episode in range(episodes):
            run.reset(first_seed + episode)
            while not run.done:
                run.step(policy.act(run.observation))
            crashed += run.terminated
    return crashed / episodes


def main(argv=None) -> None:
    from attribution.rl.policies import load_policy, shipped_env_ids

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("env_id", choices=shipped_env_ids())
    parser.add_argument("--episodes", type=int, default=100)
    args = parser.parse_args(argv)
    returns, _ = evaluate(load_policy(args.env_id), args.env_id, args.episodes)
    print(f"{args.env_id}: mean return {returns.mean():.1f}, std {returns.std():.1f} over {args.episodes} episodes "
          f"(seeds {EVAL_SEED} to {EVAL_SEED + args.episodes - 1})")


if __name__ == "__main__":
    sys.exit(main())
