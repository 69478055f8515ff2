"""Pong, the pixel agent: IG of one state at the app's defaults and of a whole recorded game, against a
plain eager batched call in the same run, and the memory one open game takes.

    python benchmarks/pong.py [--seed 0] [--steps 16] [--max-steps N]

The app's defaults for images: the probability of the chosen action, the empty-playfield baseline,
16 Gauss-Legendre points with refine on (it adds points wherever the gap stays above 1%). The
engine's call for one state also brings back the map (Live paints it); for the game it brings
back the five object sums only, in pieces of 256 states, as Replay does. The eager reference is
what one would write by hand: every path point of a state in one batch through
``tf.GradientTape``, no compilation, the same points, no refinement.

Memory is the process's resident set (VmRSS) with the policy loaded and compiled, then with the
game recorded (observations as bytes, a frame stack as one frame a step; frames as PNG) and
explained, as the Replay page holds it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from attribution import explain, integrated_gradients  # noqa: E402
from attribution.analysis.baselines import empty_playfield  # noqa: E402
from attribution.analysis.episode_attribution import attribute_episode  # noqa: E402
from attribution.engine import backend  # noqa: E402
from attribution.engine.quadrature import quadrature_rule  # noqa: E402
from attribution.rl.history import kept_bytes  # noqa: E402
from attribution.rl.policies import load_policy  # noqa: E402
from attribution.rl.pong import PongObjects  # noqa: E402
from attribution.rl.rollout import record_episode  # noqa: E402

from timing import median_ms  # noqa: E402

PONG = "ALE/Pong-v5"


def resident_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def eager_ig(model, states, baseline, targets, steps: int, states_per_batch: int = 8) -> np.ndarray:
    """IG by hand: each batch of states' path points through one eager tape."""
    alphas, weights = (tf.constant(a, tf.float32) for a in quadrature_rule("gausslegendre", steps))
    found = []
    for first in range(0, len(states), states_per_batch):
        x = tf.constant(states[first:first + states_per_batch], tf.float32)
        n = x.shape[0]
        path = baseline[None, None] + alphas[None, :, None, None, None] * (x[:, None] - baseline[None, None])
        path = tf.reshape(path, (n * steps, *x.shape[1:]))
        with tf.GradientTape() as tape:
            tape.watch(path)
            outputs = model(path)
            chosen = tf.gather(outputs, np.repeat(targets[first:first + n], steps), batch_dims=1)
        grads = tf.reshape(tape.gradient(chosen, path), (n, steps, *x.shape[1:]))
        found.append(((x - baseline) * tf.tensordot(weights, tf.transpose(grads, (1, 0, 2, 3, 4)), 1)).numpy())
    return np.concatenate(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--max-steps", type=int, help="stop the recorded game after N steps (a won game is long)")
    args = parser.parse_args()
    policy = load_policy(PONG)
    model = explain.action_probabilities(policy.model)
    baseline = empty_playfield(policy.info.median_state, policy.info.reference_states)
    parts = PongObjects()
    state = policy.info.reference_states[:1]
    target = np.array([policy.act(state[0])])
    integrated_gradients(model, state, baseline=baseline, groups=parts.groups(state))  # compile, as the app has
    before = resident_mb()

    print(f"Pong, device {backend.device_name()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    engine_ms = median_ms(lambda: integrated_gradients(model, state, baseline=baseline, target=target,
                                                       steps=args.steps, groups=parts.groups(state)))
    eager_ms = median_ms(lambda: eager_ig(model, state, tf.constant(baseline), target, args.steps))
    print(f"{f'one state, {args.steps} points':<34}{'engine ms':>11}{'eager ms':>10}{'speed-up':>10}")
    print(f"{'  map + object sums':<34}{engine_ms:>11.1f}{eager_ms:>10.1f}{eager_ms / engine_ms:>10.1f}")

    started = time.perf_counter()
    game = record_episode(policy, args.seed, max_steps=args.max_steps)
    recorded = time.perf_counter() - started
    targets = game.actions.astype(np.int64)
    explained = attribute_episode(model, game, targets, [""] * len(game), baseline, args.steps, "gausslegendre", {})
    open_game = resident_mb()  # what Replay holds: the episode and its object sums
    started = time.perf_counter()
    plain = [integrated_gradients(model, game.observations[i:i + 256], baseline=baseline, target=targets[i:i + 256],
                                  steps=args.steps, refine=False, groups=parts.groups(game.observations[i:i + 256]),
                                  attributions=False).group_sums for i in range(0, len(game), 256)]
    unrefined_s = time.perf_counter() - started
    started = time.perf_counter()
    by_hand = eager_ig(model, game.observations.astype(np.float32), tf.constant(baseline), targets, args.steps)
    eager_s = time.perf_counter() - started
    hand_sums = parts.groups(game.observations).sums(by_hand)
    print(f"\nthe game: seed {args.seed}, {len(game)} steps, return {game.total_return:+.0f}, "
          f"recorded in {recorded:.1f} s")
    print(f"{'whole game, object sums per step':<34}{'engine s':>11}{'eager s':>10}{'speed-up':>10}{'states/s':>10}")
    print(f"{'  refine off (the same points)':<34}{unrefined_s:>11.1f}{eager_s:>10.1f}{eager_s / unrefined_s:>10.1f}"
          f"{len(game) / unrefined_s:>10.0f}")
    print(f"{'  refine on (as Replay)':<34}{explained.seconds:>11.1f}{'':>10}{'':>10}"
          f"{len(game) / explained.seconds:>10.0f}")
    worst = np.abs(np.concatenate(plain) - hand_sums).max() / max(np.abs(hand_sums).max(), 1e-12)
    print(f"largest difference of the unrefined object sums from the eager ones: {worst:.1e} of the largest sum; "
          f"refined: largest completeness gap {np.abs(explained.delta).max():.2g}, "
          f"{int((explained.steps > args.steps).sum())} states given more points")
    print(f"\nresident memory: {before:.0f} MB with the policy compiled, {open_game:.0f} MB with the game open and "
          f"explained (+{open_game - before:.0f} MB: observations {kept_bytes(game.observations) / 2**20:.0f} MB as "
          f"bytes, one frame a step, "
          f"frames {game.frames.nbytes / 2**20:.1f} MB as PNG, "
          f"object sums {explained.attributions.nbytes / 2**20:.2f} MB)")


if __name__ == "__main__":
    main()
