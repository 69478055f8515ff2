"""The objects on Pong's screen, found in each observation: what the Pong agent's bars are about.

An observation is four stacked 84x84 grayscale frames (``make_env("ALE/Pong-v5")``). In every
frame the playfield's background is one gray; what differs from it is an object, told apart by
where it is: the agent's (right) paddle and the opponent's (left) paddle move up and down fixed
columns, anything else in the playfield is the ball, and the band above the top wall is the
score. A ball that has passed into a paddle's columns counts as that paddle.
"""

from __future__ import annotations

import numpy as np

from attribution.engine.groups import FeatureGroups

OBJECTS = ("ball", "agent's paddle", "opponent's paddle", "score")
BALL, AGENT, OPPONENT, SCORE = range(4)
SCORE_ROWS = slice(0, 9)          # the score's band, above the top wall (rows of the 84x84 frame)
PLAYFIELD_ROWS = slice(14, 77)    # between the walls
AGENT_COLUMNS = slice(72, 77)     # the right paddle's columns, with the pixels its edges blur into
OPPONENT_COLUMNS = slice(7, 12)
DIFFERENCE = 6                    # gray levels from the background that make a pixel part of an object


def object_masks(observations) -> np.ndarray:
    """Where each object is in every stacked frame: bool (N, 4 objects, frames, 84, 84), in OBJECTS' order."""
    frames = np.asarray(observations)
    playfield = frames[..., PLAYFIELD_ROWS, :].astype(np.int16)
    background = np.median(playfield.reshape(*playfield.shape[:2], -1), axis=-1)[..., None, None]
    differs = np.zeros(frames.shape, bool)
    differs[..., PLAYFIELD_ROWS, :] = np.abs(playfield - background) > DIFFERENCE
    masks = np.zeros((len(frames), len(OBJECTS), *frames.shape[1:]), bool)
    masks[:, AGENT, ..., AGENT_COLUMNS] = differs[..., AGENT_COLUMNS]
    masks[:, OPPONENT, ..., OPPONENT_COLUMNS] = differs[..., OPPONENT_COLUMNS]
    masks[:, BALL] = differs & ~masks[:, AGENT] & ~masks[:, OPPONENT]
    masks[:, SCORE, ..., SCORE_ROWS, :] = True
    return masks


def centre_row(mask: np.ndarray) -> float | None:
    """The mean row of a (84, 84) mask, or None where it is empty."""
    rows = np.nonzero(mask.any(axis=1))[0]
    return float(rows.mean()) if len(rows) else None


def centre_column(mask: np.ndarray) -> float | None:
    columns = np.nonzero(mask.any(axis=0))[0]
    return float(columns.mean()) if len(columns) else None


class PongObjects:
    """The parts of a Pong observation a person talks about: the four objects and everything else."""

    kind = "object"
    names = (*OBJECTS, "everything else")

    def groups(self, observations) -> FeatureGroups:
        """One partition per state: each object's pixels in all four frames, then the rest."""
        return FeatureGroups.from_masks(OBJECTS, object_masks(observations), per_state=True)

    def present(self, observation) -> np.ndarray:
        """Every part gets its bar (an object off the screen gets a bar near zero): bool (5,)."""
        return np.ones(len(self.names), bool)

    def outlines(self, observation) -> dict[str, np.ndarray]:
        """Each object's pixels in the newest frame, bool (84, 84), to draw around on the screen."""
        masks = object_masks(np.asarray(observation)[None])[0]
        return {name: masks[i, -1] for i, name in enumerate(OBJECTS)}

    def descriptions(self, observation) -> list[str]:
        """One noun phrase per part, with ``{value}`` where its attribution goes: "the ball ({value}),
        which is above its paddle and coming towards it"."""
        masks = object_masks(np.asarray(observation)[None])[0]
        ball_now, ball_before = masks[BALL, -1], masks[BALL, -2]
        ball_row, paddle_row = centre_row(ball_now), centre_row(masks[AGENT, -1])
        if ball_row is None:
            ball = "the ball ({value}), which is out of play"
        else:
            where = ("level with its paddle" if paddle_row is None or abs(ball_row - paddle_row) < 2
                     else "above its paddle" if ball_row < paddle_row else "below its paddle")
            now, before = centre_column(ball_now), centre_column(ball_before)
            heading = "" if before is None or now == before else (
                " and coming towards it" if now > before else " and moving away")
            ball = f"the ball ({{value}}), which is {where}{heading}"
        return [ball, "its own paddle ({value})", "the opponent's paddle ({value})", "the score ({value})",
                "the rest of the screen ({value})"]
