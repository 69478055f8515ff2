"""An explained episode as files to hand on: CSV and JSON tables, and a self-contained HTML report.

Every number comes from an ``EpisodeAttribution``; nothing is recomputed here.
"""

from __future__ import annotations

import csv
import html
import io
import json

import numpy as np
import plotly.io

from attribution.analysis.episode_attribution import EpisodeAttribution
from attribution.rl.episodes import Episode

CSV_COLUMNS = ("step", "feature", "action", "explained output", "attribution", "observation value")


def action_labels(episode: Episode, action_names) -> list[str]:
    """What the agent did at each step, for people: a name, or the continuous action's numbers."""
    if episode.actions.ndim == 1 and action_names is not None:
        return [action_names[int(a)] for a in episode.actions]
    return [" ".join(f"{v:+.3f}" for v in np.atleast_1d(a)) for a in episode.actions]


def _feature_values(episode: Episode, explained: EpisodeAttribution) -> np.ndarray | None:
    """(T, F) the observation where the parts are its features; None where they are objects on a screen."""
    features = int(np.prod(episode.observations.shape[1:]))
    return episode.observations.reshape(len(episode), features) if features == explained.attributions.shape[1] else None


def attribution_rows(episode: Episode, explained: EpisodeAttribution, feature_names, action_names) -> list[tuple]:
    """One row per step and part (feature or object), in CSV_COLUMNS order; an object's value is None."""
    values = _feature_values(episode, explained)
    actions = action_labels(episode, action_names)
    return [
        (t, name, actions[t], explained.output_names[t], float(explained.attributions[t, i]),
         None if values is None else float(values[t, i]))
        for t in range(len(episode))
        for i, name in enumerate(feature_names)
    ]


def to_csv(episode: Episode, explained: EpisodeAttribution, feature_names, action_names) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(
        (*row[:4], repr(row[4]), "" if row[5] is None else repr(row[5]))
        for row in attribution_rows(episode, explained, feature_names, action_names)
    )
    return buffer.getvalue()


def to_json(episode: Episode, explained: EpisodeAttribution, feature_names, action_names) -> str:
    """The episode's summary, the settings, and per step: action, output, attributions (per feature or
    object), the observation where the parts are its features, and the gap."""
    actions = action_labels(episode, action_names)
    values = _feature_values(episode, explained)
    return json.dumps({
        "environment": episode.env_id, "policy": episode.policy, "seed": episode.seed, "steps": len(episode),
        "return": episode.total_return, "settings": explained.settings, "features": list(feature_names),
        "per_step": [{
            "step": t, "action": actions[t], "reward": float(episode.rewards[t]),
            "explained_output": explained.output_names[t], "output_at_state": float(explained.at_state[t]),
            "output_at_baseline": float(explained.at_baseline[t]),
            "attributions": [float(v) for v in explained.attributions[t]],
            **({} if values is None else {"observation": [float(v) for v in values[t]]}),
            "completeness_gap": float(explained.delta[t]), "path_points": int(explained.steps[t]),
        } for t in range(len(episode))],
    }, indent=1)


def html_report(title: str, summary: list[str], settings: dict, figures) -> str:
    """A page that opens with no network: Plotly's script is embedded once, the charts stay interactive.

    Args:
        summary: sentences shown under the title (the completeness check among them).
        settings: name -> value, shown as a table.
        figures: plotly figures, drawn in order.
    """
    charts = [plotly.io.to_html(figure, full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
              for i, figure in enumerate(figures)]
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in settings.items()
    )
    sentences = "".join(f"<p>{html.escape(line)}</p>" for line in summary)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
            "th{text-align:left;padding-right:1em}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{sentences}<table>{rows}</table>{''.join(charts)}</body></html>")
