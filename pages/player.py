"""The Live page's real-time Play: the server plays ahead in chunks, explains each chunk in one
batched engine call, and a small browser component (player.js) shows the steps at a steady rate,
the way a video player plays from its buffer, asking for the next second of steps while it holds
fewer than four. Pausing goes back to the step on screen, so Step continues from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.colors
import streamlit as st

from attribution.presentation.narrate import completeness_sentence, settled_sentence, step_sentence
from attribution.presentation.overlay import display_scale, painted_screen, png_data_url
from attribution.rl.rollout import play_ahead
from pages.common import (
    Settings,
    choice_caption,
    explain_states,
    frame_with_parts,
    is_playing,
    set_playing,
    shown_bars_html,
)

RATES = {"1 step/s": 1, "2 steps/s": 2, "5 steps/s": 5, "10 steps/s": 10, "15 steps/s": 15, "30 steps/s": 30}
HISTORY = 2000  # steps of the time chart the player keeps and draws
BUFFER_S = 4  # seconds of play the browser fills up to, a second a request: room for a slow stretch (refined states)
PLAY_MAX_STEPS = 128  # path points refinement may give a state in Play, to keep its pace; a paused step gets all
COLORS = plotly.colors.qualitative.Plotly  # the time chart's colours (Plotly's default, as in the paused chart)

_HERE = Path(__file__).parent
_player = st.components.v2.component("rl_player", js=(_HERE / "player.js").read_text(),
                                     css=(_HERE / "player.css").read_text())


def reading(settings: Settings, observation, action, attributions, at_state: float,
            at_baseline: float) -> tuple[str, str]:
    """How a step reads: the action as the Action metric shows it, and the plain sentence on why."""
    policy = settings.policy
    if policy.info.continuous:
        label = f"{float(np.asarray(action).reshape(-1)[0]):+.2f}"
        subject = f"The agent's {policy.info.action_names[0]} is {label}"
    else:
        label = policy.info.action_names[action]
        subject = f"The agent chose {label.upper()}"
    if not settings.output.is_actions_score:
        subject = f"{subject}; {settings.output_name(settings.target_for(action))} is {at_state:.2f}"
    parts = settings.parts
    settled = settings.output.kind == "probability" and settled_sentence(
        subject, settings.output_name(settings.target_for(action)), at_state, at_baseline)
    return label, settled or step_sentence(subject, attributions, parts.descriptions(observation),
                                           nouns=parts.kind == "object")


def explained_chunk(settings: Settings, live, count: int, every_action: bool, magnitude: bool) -> list[dict]:
    """Play up to ``count`` greedy steps of ``live.run`` and explain them in one batched call: one
    dict per step as the player shows it (its picture, numbers, sentences, bars and the sums for the
    time chart). The sums are also appended to ``live.timeline``, which covers every step played."""
    run, policy = live.run, settings.policy
    start, total_return = run.t, run.total_return
    frames = play_ahead(run, policy, count)
    if not frames:
        return []
    states, actions = np.asarray(run.observations[start:]), run.actions[start:]
    targets = [settings.target_for(a) for a in actions]
    result = explain_states(settings, states, targets, every_action, maps=settings.image, max_steps=PLAY_MAX_STEPS)
    rows = np.arange(len(states))
    chosen = result.group_sums[rows, targets] if every_action else result.group_sums  # (n, parts)
    live.timeline = np.concatenate([live.timeline, chosen.astype(np.float32)])
    actors = None if policy.info.continuous else policy.heads(states)[policy.info.actor_head]
    steps = []
    for k, (state, action, target) in enumerate(zip(states, actions, targets, strict=True)):
        at_state, at_baseline = float(result.outputs[k, target]), float(result.baseline_outputs[k, target])
        label, sentence = reading(settings, state, action, chosen[k], at_state, at_baseline)
        charts = ([(settings.output_name(a), result.group_sums[k, a]) for a in range(result.group_sums.shape[1])]
                  if every_action else [(f"why {settings.output_name(target)}", chosen[k])])
        maps = result.attributions[k] if settings.image else None
        screen = picture(settings, frames[k], state, maps, target, every_action, chosen[k], magnitude)
        steps.append({
            "t": start + k,
            "frame": png_data_url(screen),
            "action": label,
            "policy": "" if actors is None else choice_caption(policy, actors[k]),
            "return": total_return,
            "sentence": sentence,
            "gap": completeness_sentence(settings.output_name(target), at_state, at_baseline, float(chosen[k].sum())),
            "bars": "".join(shown_bars_html(settings, state, values, title) for title, values in charts),
            "sums": chosen[k].tolist(),
        })
        total_return += run.rewards[start + k]
    return steps


def picture(settings: Settings, frame, state, maps, target: int, every_action: bool, sums, magnitude: bool):
    """The frame as the Live page draws it: a pixel agent's screen with its newest stacked frame's
    attribution painted over it and objects outlined; vehicles tinted by their sums; else as it is."""
    if maps is None:
        return frame_with_parts(settings, frame, state, sums)
    maps = maps[target] if every_action else maps
    return painted_screen(frame, maps[-1], settings.parts.outlines(state), display_scale(maps), magnitude)


def show_player(settings: Settings, live, rate: int, every_action: bool) -> None:
    """The player, fed with the chunk the browser asked for (the first chunk when Play was pressed)."""
    magnitude = settings.image and st.toggle("Magnitude only", key="live_magnitude",
                                             help="colour by how much each pixel mattered, whichever way it pushed")
    if not live.ahead and not live.run.done:  # Play was pressed: a second to start with
        live.ahead = explained_chunk(settings, live, rate, every_action, magnitude)
    history = live.timeline[:live.ahead[0]["t"]] if live.ahead else live.timeline
    first = live.history_sent != live.plays  # the time chart so far goes once, with a play's first chunk
    live.history_sent = live.plays
    _player(
        key="live_player",
        data={
            "episode": f"{id(live)}:{live.plays}",
            "rate": rate,
            "buffer_s": BUFFER_S,
            "names": list(settings.parts.names),
            "colors": COLORS,
            "done": live.run.done,
            "last": live.run.t - 1,
            "steps": live.ahead,
            "history": history[-HISTORY:].tolist() if first else [],
            "window": HISTORY,
            "history_start": max(0, len(history) - HISTORY),
            "answered": live.answered,
        },
        on_need_change=lambda: _more(settings, live, rate, every_action, magnitude),
        on_pause_change=lambda: _pause(live),
    )


def _more(settings: Settings, live, rate: int, every_action: bool, magnitude: bool) -> None:
    """The browser has every step before ``need["from"]`` and wants the next chunk."""
    need = _sent(live, "need")
    if need is None:
        return
    live.answered = need["request"]
    live.ahead = [step for step in live.ahead if step["t"] >= need["from"]]
    if not live.ahead and not live.run.done:
        live.ahead += explained_chunk(settings, live, rate, every_action, magnitude)


def _pause(live) -> None:
    """Pause (or the end of the episode): stop at the step on screen, going back to it if the server played ahead."""
    shown = _sent(live, "pause")
    if shown is None:
        return
    run = live.run
    try:
        shown = min(max(int(shown), 0), run.t)
        if shown < run.t:
            run.rewind(shown)
    finally:  # the page stops playing whatever happened, its timeline matching the steps played
        live.timeline = live.timeline[:run.t]
        live.ahead = []
        set_playing("live", False)


def _sent(live, event: str):
    """What the player sent with ``event``; None when it no longer plays ``live`` (a Reset or another
    episode came first, and its message arrived late)."""
    if st.session_state.get("live") is not live or not is_playing("live"):
        return None
    return (st.session_state.get("live_player") or {}).get(event)
