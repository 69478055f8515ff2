"""Replay's record-and-explain time for 1,000 LunarLander steps (issue 5's target: under 10 s in
all, the attribution under 1 s, on the project's 2-core machine).

    python benchmarks/replay_speed.py [--env LunarLander-v3] [--steps 1000] [--repeats 3]

The shipped LunarLander policy lands in 200-500 steps, so no single greedy episode reaches 1,000
steps. The benchmark therefore records consecutive greedy episodes (seeds 0, 1, ...) with frames until it has
1,000 steps: the same work as one 1,000-step episode (environment steps, rendering, PNG encoding,
one policy call per step). It then explains all 1,000 states in one engine call, with the page's
default settings (action probability, zeros baseline, 64 Gauss-Legendre points, refine on).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from attribution import explain, integrated_gradients  # noqa: E402
from attribution.engine import backend
from attribution.episodes import record_episode  # noqa: E402
from attribution.rl.policies import load_policy  # noqa: E402


def record_steps(policy, n_steps: int):
    """Greedy episodes with frames, seeds 0, 1, ..., until n_steps: (observations, actions, episodes used)."""
    observations, actions, seed, recorded = [], [], 0, 0
    while recorded < n_steps:
        episode = record_episode(policy, seed, max_steps=n_steps - recorded)
        observations.append(episode.observations)
        actions.append(episode.actions)
        recorded += len(episode)
        seed += 1
    return np.concatenate(observations), np.concatenate(actions), seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="LunarLander-v3")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    policy = load_policy(args.env)
    model = explain.action_probabilities(policy.model)
    integrated_gradients(
        model, np.zeros((1, len(policy.info.feature_names)), np.float32)
    )  # compile once, as the app has

    print(f"Replay speed, {args.env}, {args.steps} steps, device {backend.device_name()}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(
        f"{'run':>4}{'episodes':>10}{'record s':>10}{'explain s':>11}{'total s':>9}{'max points':>12}"
        f"{'median gap %':>14}"
    )
    totals = []
    for run in range(args.repeats):
        started = time.perf_counter()
        observations, actions, episodes = record_steps(policy, args.steps)
        recorded = time.perf_counter()
        result = integrated_gradients(model, observations, target=actions)
        explained = time.perf_counter()
        gap = np.abs(result.delta) / np.maximum(np.abs(result.output_change), 1e-12)
        totals.append(explained - started)
        print(
            f"{run:>4}{episodes:>10}{recorded - started:>10.2f}{explained - recorded:>11.2f}{explained - started:>9.2f}"
            f"{int(result.steps.max()):>12}{100 * np.median(gap):>14.3f}"
        )
    print(f"median total {statistics.median(totals):.2f} s")


if __name__ == "__main__":
    main()
