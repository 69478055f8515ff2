"""Write pong_states.npz: a few Pong observations and where their objects are, read from the colour screen.

    python tests/data/make_pong_states.py

The positions (84x84 frame coordinates, NaN where an object is off the screen) come from the
emulator's colour screen at the same moment, independently of ``attribution.rl.pong``'s reading of
the grayscale observation, which ``tests/test_pong.py`` checks against them.
"""

from pathlib import Path

import numpy as np

from attribution.rl.environments import make_env

BALL, AGENT, OPPONENT = (236, 236, 236), (92, 186, 92), (213, 130, 74)
STEPS = (40, 75, 110, 160, 230)  # states where the ball is in play at different places


def centre(screen, colour, columns=slice(None)):
    rows, cols = np.nonzero(np.all(screen[34:194, columns] == colour, axis=-1))
    if not len(rows):
        return np.nan, np.nan
    start = columns.start or 0
    return (rows.mean() + 34) * 84 / 210, (cols.mean() + start) * 84 / 160


def main():
    env = make_env("ALE/Pong-v5")
    observation, _ = env.reset(seed=7)
    rng = np.random.default_rng(7)
    kept = {"observations": [], "ball": [], "agent": [], "opponent": []}
    for t in range(max(STEPS) + 1):
        if t in STEPS:
            screen = env.unwrapped.ale.getScreenRGB()
            kept["observations"].append(observation)
            kept["ball"].append(centre(screen, BALL))
            kept["agent"].append(centre(screen, AGENT, slice(140, 144)))
            kept["opponent"].append(centre(screen, OPPONENT, slice(16, 20)))
        observation, *_ = env.step(int(rng.choice([0, 2, 3])))
    np.savez_compressed(Path(__file__).with_name("pong_states.npz"), **{k: np.array(v) for k, v in kept.items()})


if __name__ == "__main__":
    main()
