"""Train a shipped policy, one environment per command, and write it to ``assets/policies``.

    python -m attribution.training.train CartPole-v1 --seed 0    # writes assets/policies/CartPole-v1.keras + .json

The algorithm and its settings per environment are ``CONFIGS``: PPO (``ppo.py``) with the RL
Baselines3 Zoo's tuned hyper-parameters, TD3 (``td3.py``) for Pendulum, and DAgger from a teacher
for driving (``dagger.py``) and Pong (``dagger_pixels.py``). The trained policy is
evaluated on unseen seeds and saved with a sidecar of its names, figures and reference states.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import NamedTuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from attribution.rl.environments import ENVIRONMENTS  # noqa: E402
from attribution.rl.policies import POLICY_DIR, policy_file_name, policy_from_model, save_policy  # noqa: E402
from attribution.training.dagger import DAggerConfig, train_dagger  # noqa: E402
from attribution.training.dagger_pixels import PixelDAggerConfig, train_dagger_pixels  # noqa: E402
from attribution.training.evaluate import crash_rate, evaluate  # noqa: E402
from attribution.training.ppo import PPOConfig, train_ppo  # noqa: E402
from attribution.training.td3 import TD3Config, train_td3  # noqa: E402

N_REFERENCE_STATES = 256
N_IMAGE_REFERENCE_STATES = 8     # each (4, 84, 84): the sidecar keeps a few, and the median of all it saw
IMAGE_KEEP_EVERY = 25            # image evaluations keep every 25th state, not every one

TRAINERS = {PPOConfig: train_ppo, TD3Config: train_td3, DAggerConfig: train_dagger,
            PixelDAggerConfig: train_dagger_pixels}
METHODS = {
    PPOConfig: "PPO (proximal policy optimisation) on the environment's reward",
    TD3Config: "TD3 (twin delayed DDPG) on the environment's reward",
    DAggerConfig: ("DAgger: imitation of a careful rule-based driver (a gap to the car ahead that grows with the "
                   "closing speed; a free lane, or slowing down, when it is short; keep right)"),
    PixelDAggerConfig: ("DAgger from pixels: a small CNN seeing only the stacked frames, imitating a player that reads "
                        "the ball and its paddle from the emulator's memory and plans its last steps before each "
                        "return on copies of the emulator"),
}

CONFIGS: dict[str, PPOConfig | TD3Config | DAggerConfig | PixelDAggerConfig] = {
    "CartPole-v1": PPOConfig(total_steps=100_000, n_envs=8, n_steps=32, minibatch_size=256, n_epochs=20,
                             gamma=0.98, gae_lambda=0.8, learning_rate=1e-3),
    "LunarLander-v3": PPOConfig(total_steps=1_000_000, n_envs=16, n_steps=1024, minibatch_size=64, n_epochs=4,
                                gamma=0.999, gae_lambda=0.98, entropy_coef=0.01),
    "Acrobot-v1": PPOConfig(total_steps=500_000, n_envs=16, n_steps=256, n_epochs=4, gae_lambda=0.94,
                            normalize_reward=True),
    "MountainCar-v0": PPOConfig(total_steps=1_000_000, n_envs=16, n_steps=16, n_epochs=4, gae_lambda=0.98,
                                normalize_reward=True),
    "Pendulum-v1": TD3Config(total_steps=30_000),  # see attribution/td3.py for why not PPO
    "ALE/Pong-v5": PixelDAggerConfig(),  # see attribution/training/dagger_pixels.py
    "highway-fast-v0": DAggerConfig(),  # see attribution/training/dagger.py for why not DQN
}



class Checkpoints:
    """Keeps the policy every ``every`` steps as ``ENV-step000012288.keras`` with a sidecar giving its
    training steps, which is what orders checkpoints in a batch job and on the Runs page."""

    def __init__(self, env_id: str, folder: Path, every: int, **metadata):
        self.env_id, self.folder, self.every, self.metadata, self.kept = env_id, folder, every, metadata, 0

    def __call__(self, steps: int, shipped) -> None:
        if steps // self.every > self.kept:
            self.kept = steps // self.every
            model, log_std = shipped()
            stem = policy_file_name(self.env_id).removesuffix(".keras")
            save_policy(model, self.env_id, self.folder, name=f"{stem}-step{steps:09d}", training_steps=steps,
                        action_log_std=log_std, **self.metadata)


class Range(NamedTuple):
    """The values a config field may take: from ``low`` (itself allowed if ``low_allowed``) to ``high``."""
    low: float
    high: float = math.inf
    low_allowed: bool = True

    def __contains__(self, value) -> bool:
        return math.isfinite(value) and (value >= self.low if self.low_allowed else value > self.low) \
            and value <= self.high

    def __str__(self) -> str:
        lowest = f"at least {self.low:g}" if self.low_allowed else f"above {self.low:g}"
        return lowest if self.high == math.inf else f"{lowest} and at most {self.high:g}"


COUNT, ZERO_OR_MORE, ABOVE_ZERO = Range(1), Range(0), Range(0, low_allowed=False)
FRACTION, DISCOUNT = Range(0, 1), Range(0, 1, low_allowed=False)
RANGES = {  # what ``--set`` accepts per field of the configs; a number field not named takes any finite value
    "total_steps": COUNT, "n_envs": COUNT, "n_steps": COUNT, "minibatch_size": COUNT, "minibatch": COUNT,
    "batch_size": COUNT, "n_epochs": COUNT, "epochs": COUNT, "rounds": COUNT, "policy_delay": COUNT,
    "teacher_horizon": COUNT, "workers": COUNT, "learning_starts": ZERO_OR_MORE, "first_round": ZERO_OR_MORE,
    "gamma": DISCOUNT, "tau": DISCOUNT, "gae_lambda": FRACTION, "teacher_share": FRACTION,
    "learning_rate": ABOVE_ZERO, "final_learning_rate": ABOVE_ZERO, "clip": ABOVE_ZERO, "max_grad_norm": ABOVE_ZERO,
    "entropy_coef": ZERO_OR_MORE, "value_coef": ZERO_OR_MORE, "critical_weight": ZERO_OR_MORE,
    "teacher_steep_bonus": ZERO_OR_MORE, "teacher_dead_band": ZERO_OR_MORE, "exploration_noise": ZERO_OR_MORE,
    "policy_noise": ZERO_OR_MORE,
    "noise_clip": ZERO_OR_MORE, "safe_time": ZERO_OR_MORE, "min_gap": ZERO_OR_MORE, "hidden": COUNT,
    "critic_rollouts": ZERO_OR_MORE, "critic_horizon": COUNT, "critic_margin": ZERO_OR_MORE,
    "branch_horizon": ZERO_OR_MORE, "teacher_sticky_delay": ZERO_OR_MORE, "easy_keep": DISCOUNT,
    "teacher_plan_until": Range(-1),  # -1: the step after the ball reaches the paddle, the last that can return it
}


def resumed_config(config: PixelDAggerConfig, trained: dict, model_path: str) -> PixelDAggerConfig:
    """The config to go on training a policy with: the one it was trained with (``trained``, from its
    sidecar; a field it does not name keeps ``config``'s), but ``config``'s length, starting from
    ``model_path`` at the round after its last."""
    kept = {field.name: trained[field.name] for field in dataclasses.fields(config)
            if field.name in trained and field.name not in ("total_steps", "initial_model", "first_round")}
    if "conv" in kept:  # JSON gives lists
        kept["conv"] = tuple(tuple(layer) for layer in kept["conv"])
    return dataclasses.replace(config, **kept, initial_model=model_path,
                               first_round=trained.get("first_round", 0) + trained["rounds"])


def with_overrides(config, assignments: list[str]):
    """``config`` with each ``"field=value"`` applied, the value read as the field's type (int, float, bool
    or str) and checked against ``RANGES``. Raises ValueError naming what was expected and what was received."""
    fields = {field.name: getattr(config, field.name) for field in dataclasses.fields(config)}
    changes = {}
    for assignment in assignments:
        name, equals, text = assignment.partition("=")
        if not equals or name not in fields:
            raise ValueError(f"--set takes FIELD=VALUE with a field of {type(config).__name__} "
                             f"({', '.join(fields)}); received {assignment!r}.")
        kind = type(fields[name])
        if kind not in (int, float, bool, str):
            raise ValueError(f"--set cannot change {name}, a {kind.__name__}; change it in CONFIGS.")
        try:
            if kind is bool:
                if text.lower() not in ("true", "false"):
                    raise ValueError
                changes[name] = text.lower() == "true"
            else:
                changes[name] = kind(text)
        except ValueError:
            expected = {int: "a whole number", float: "a number", bool: "true or false", str: "a word"}[kind]
            raise ValueError(f"--set {name} expects {expected}; received {text!r}.") from None
        allowed = RANGES.get(name, Range(-math.inf)) if kind in (int, float) else None
        if allowed is not None and changes[name] not in allowed:
            raise ValueError(f"--set {name} expects a number {allowed}; received {text!r}.")
    return dataclasses.replace(config, **changes)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("env_id", choices=sorted(CONFIGS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--total-steps", type=int, help="override the config's training length")
    parser.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                        help="override fields of the environment's config (a number or a word each), e.g. "
                             "--set learning_rate=3e-4 teacher_horizon=6; the sidecar records the config used")
    parser.add_argument("--resume", metavar="POLICY.keras",
                        help="Pong: go on training a policy this command wrote (its sidecar beside it) with the "
                             "config it was trained with (--set changes it), its rounds going on from where it "
                             "stopped; its steps and minutes count in the new sidecar")
    parser.add_argument("--out", default=str(POLICY_DIR), help="folder for ENV_ID.keras and ENV_ID.json")
    parser.add_argument("--eval-episodes", type=int, help="default: 100, or 20 for an image environment")
    parser.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                        help="PPO: also keep the policy every N steps, in OUT/checkpoints/ (for a batch job across "
                             "training: python -m attribution.batch --policy OUT/checkpoints ...)")
    args = parser.parse_args(argv)
    config = CONFIGS[args.env_id]
    if args.checkpoint_every < 0:
        parser.error(f"--checkpoint-every must be a positive number of steps; received {args.checkpoint_every}.")
    for option, value in (("--total-steps", args.total_steps), ("--eval-episodes", args.eval_episodes)):
        if value is not None and value < 1:
            parser.error(f"{option} must be at least 1; received {value}.")
    if args.checkpoint_every and not isinstance(config, PPOConfig):
        parser.error(f"--checkpoint-every works with PPO-trained environments "
                     f"({', '.join(e for e, c in CONFIGS.items() if isinstance(c, PPOConfig))}); "
                     f"{args.env_id} is trained with {type(config).__name__.removesuffix('Config')}.")
    before = {"training_steps": 0, "training_minutes": 0.0}
    if args.resume:
        if not isinstance(config, PixelDAggerConfig):
            parser.error(f"--resume works with Pong's DAgger from pixels; {args.env_id} is trained with "
                         f"{type(config).__name__.removesuffix('Config')}.")
        sidecar = Path(args.resume).with_suffix(".json")
        if not sidecar.is_file():
            parser.error(f"--resume needs a policy this command wrote, with its sidecar beside it; {sidecar} is "
                         f"not there.")
        before = json.loads(sidecar.read_text())
        config = resumed_config(config, before["config"], args.resume)
    if args.total_steps is not None:
        config = dataclasses.replace(config, total_steps=args.total_steps)
    try:
        config = with_overrides(config, args.set)
    except ValueError as error:
        parser.error(str(error))
    print(f"training {args.env_id}, seed {args.seed}: {config}", file=sys.stderr)
    start = time.time()
    extra = {"checkpoints": Checkpoints(args.env_id, Path(args.out) / "checkpoints", args.checkpoint_every,
                                        seed=args.seed, training_method=METHODS[type(config)])
             } if args.checkpoint_every else {}
    model, log_std, steps = TRAINERS[type(config)](args.env_id, args.seed, config, **extra)
    method = METHODS[type(config)]
    if args.resume:  # the sidecar says how the policy went on training, after how it began
        changes = f" with {', '.join(args.set)}" if args.set else ""
        method = f"{before.get('training_method') or method}; then {steps:,} more steps{changes}"
    steps, minutes = steps + before["training_steps"], (time.time() - start) / 60 + before["training_minutes"]
    image = bool(ENVIRONMENTS.get(args.env_id) and ENVIRONMENTS[args.env_id].frames)
    episodes = args.eval_episodes or (20 if image else 100)
    returns, states = evaluate(policy_from_model(model, args.env_id), args.env_id, episodes,
                               keep_every=IMAGE_KEEP_EVERY if image else 1)
    crashes = {}
    if ENVIRONMENTS.get(args.env_id) and ENVIRONMENTS[args.env_id].ends_in_crash:
        crashes["eval_crash_rate"] = crash_rate(policy_from_model(model, args.env_id), args.env_id, episodes)
    n_reference = N_IMAGE_REFERENCE_STATES if image else N_REFERENCE_STATES
    chosen = np.random.default_rng(args.seed).choice(len(states), min(n_reference, len(states)), replace=False)
    reference = states[chosen]
    path = save_policy(
        model,
        args.env_id,
        args.out,
        seed=args.seed,
        training_steps=steps,
        training_minutes=round(minutes, 1),
        eval_return_mean=float(returns.mean()),
        eval_return_std=float(returns.std()),
        eval_episodes=episodes,
        action_log_std=log_std,
        reference_states=reference.astype(np.uint8) if image else reference,  # pixels are whole numbers
        median_state=np.median(states, axis=0).astype(np.uint8) if image else np.median(states, axis=0),
        training_method=method,
        config=dataclasses.asdict(config),
        **crashes,
    )
    crashed = f", {crashes['eval_crash_rate']:.0%} crashed" if crashes else ""
    print(f"{args.env_id}: mean return {returns.mean():.1f} ± {returns.std():.1f}{crashed} over {episodes} "
          f"evaluation episodes after {steps:,} steps ({minutes:.1f} min); saved {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
