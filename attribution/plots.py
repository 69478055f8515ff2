"""Plotly figure builders: pure functions from arrays and names to ``go.Figure``."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

PUSHES_UP = "#1f77b4"    # blue: the feature raised the explained output
PUSHES_DOWN = "#d62728"  # red: the feature lowered it


def attribution_bars(feature_names, attributions, title: str = "") -> go.Figure:
    """Horizontal bars of one state's attributions, largest magnitude on top, signed colours.

    Args:
        feature_names: (n_features,) strings, with units where they have them.
        attributions: (n_features,) numbers.
    """
    values = np.asarray(attributions, dtype=float).reshape(-1)
    names = list(feature_names)
    if len(names) != len(values):
        raise ValueError(f"need one name per attribution; received {len(names)} names for {len(values)} values.")
    order = np.argsort(np.abs(values))  # plotly draws the first bar at the bottom
    figure = go.Figure(go.Bar(
        x=values[order], y=[names[i] for i in order], orientation="h",
        marker_color=[PUSHES_UP if values[i] >= 0 else PUSHES_DOWN for i in order],
        text=[f"{values[i]:+.3g}" for i in order], textposition="auto",
        hovertemplate="%{y}: %{x:+.4g}<extra></extra>",
    ))
    figure.update_layout(title=title, xaxis_title="attribution (pushes the output up + / down −)",
                         margin=dict(l=10, r=10, t=40 if title else 10, b=10), height=80 + 36 * len(values),
                         showlegend=False)
    figure.add_vline(x=0, line_width=1, line_color="#888")
    return figure


MAX_COLUMNS = 600  # time points drawn; longer episodes are downsampled keeping each stretch's extreme


def downsample_extremes(values, max_columns: int = MAX_COLUMNS) -> tuple[np.ndarray, np.ndarray]:
    """(T, K) -> steps (C,), values (C, K) with C <= max_columns: the steps cut into C even stretches,
    each drawn at its first step with, per column, the value of largest magnitude in it (so no
    spike is lost). Returns the input unchanged when T <= max_columns."""
    values = np.asarray(values, dtype=float).reshape(len(values), -1)
    if len(values) <= max_columns:
        return np.arange(len(values)), values
    edges = np.linspace(0, len(values), max_columns + 1).astype(int)
    starts = edges[:-1]
    picked = np.empty((max_columns, values.shape[1]))
    for c, (start, stop) in enumerate(zip(starts, edges[1:])):
        stretch = values[start:stop]
        picked[c] = stretch[np.abs(stretch).argmax(axis=0), np.arange(values.shape[1])]
    return starts, picked


def attribution_timeline(feature_names, attributions, actions, rewards, action_names=None, kind: str = "lines",
                         cursor: int | None = None) -> go.Figure:
    """The episode so far: attribution per feature over time (lines, or a features x time heatmap)
    above the actions taken and the rewards, three rows on one shared time axis.

    Args:
        feature_names: (F,) strings.
        attributions: (T, F) the explained output's attributions at each step.
        actions: (T,) discrete action indices, or (T, action_dim) continuous actions.
        rewards: (T,).
        action_names: names for discrete actions (hover text).
        kind: "lines" or "heatmap".
        cursor: a step to mark with a vertical line.
    Episodes longer than MAX_COLUMNS steps are downsampled (``downsample_extremes``).
    """
    from plotly.subplots import make_subplots

    steps, values = downsample_extremes(attributions)
    actions = np.asarray(actions)
    if len(steps) < len(actions):
        actions, rewards = actions[steps], downsample_extremes(rewards)[1][:, 0]
    figure = make_subplots(rows=3, cols=1, shared_xaxes=True, row_heights=[0.64, 0.18, 0.18], vertical_spacing=0.03)
    if kind == "heatmap":
        limit = float(np.abs(values).max()) or 1.0
        figure.add_trace(go.Heatmap(z=values.T, x=steps, y=list(feature_names), colorscale="RdBu", zmid=0,
                                    zmin=-limit, zmax=limit, colorbar=dict(title="attribution", len=0.7, y=0.64),
                                    hovertemplate="step %{x}<br>%{y}: %{z:+.3g}<extra></extra>"), row=1, col=1)
    elif kind == "lines":
        for i, name in enumerate(feature_names):
            figure.add_trace(go.Scatter(x=steps, y=values[:, i], mode="lines", name=name,
                                        hovertemplate=f"step %{{x}}<br>{name}: %{{y:+.3g}}<extra></extra>"), row=1, col=1)
    else:
        raise ValueError(f'kind must be "lines" or "heatmap"; received {kind!r}.')
    if actions.ndim == 1 and action_names is not None:
        labels = [action_names[int(a)] for a in actions]
        figure.add_trace(go.Scatter(x=steps, y=actions, mode="markers", name="action", marker=dict(size=6, color="#555"),
                                    text=labels, hovertemplate="step %{x}: %{text}<extra></extra>"), row=2, col=1)
        figure.update_yaxes(tickvals=list(range(len(action_names))), ticktext=list(action_names), row=2, col=1)
    else:
        figure.add_trace(go.Scatter(x=steps, y=actions.reshape(len(actions), -1)[:, 0], mode="lines", name="action",
                                    line_color="#555"), row=2, col=1)
    figure.add_trace(go.Bar(x=steps, y=np.asarray(rewards, dtype=float), name="reward", marker_color="#2ca02c",
                            hovertemplate="step %{x}: reward %{y:+.3g}<extra></extra>"), row=3, col=1)
    if cursor is not None:
        figure.add_vline(x=cursor, line_width=2, line_dash="dot", line_color="#444")
    figure.update_layout(height=460, margin=dict(l=10, r=10, t=10, b=10), hovermode="closest",
                         legend=dict(orientation="h", y=-0.12), xaxis3_title="step", clickmode="event+select")
    figure.update_yaxes(title_text="attribution", row=1, col=1)
    figure.update_yaxes(title_text="action", row=2, col=1)
    figure.update_yaxes(title_text="reward", row=3, col=1)
    return figure


def comparison_heatmaps(feature_names, first, second, first_label: str, second_label: str) -> go.Figure:
    """Two episodes' attributions on one time axis, and their difference at matched steps.

    Args:
        first, second: (T1, F) and (T2, F) attributions of the same explained output.
    Rows: first, second, first − second over the min(T1, T2) steps both have.
    """
    from plotly.subplots import make_subplots

    a_steps, a = downsample_extremes(first)
    b_steps, b = downsample_extremes(second)
    matched = min(len(first), len(second))
    d_steps, difference = downsample_extremes(np.asarray(first, float)[:matched] - np.asarray(second, float)[:matched])
    limit = float(max(np.abs(a).max(initial=0), np.abs(b).max(initial=0))) or 1.0
    figure = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                           subplot_titles=(first_label, second_label, f"{first_label} − {second_label}"))
    for row, (steps, values) in enumerate([(a_steps, a), (b_steps, b), (d_steps, difference)], start=1):
        figure.add_trace(go.Heatmap(z=values.T, x=steps, y=list(feature_names), colorscale="RdBu", zmid=0,
                                    zmin=-limit, zmax=limit, showscale=row == 1,
                                    colorbar=dict(title="attribution", len=0.9),
                                    hovertemplate="step %{x}<br>%{y}: %{z:+.3g}<extra></extra>"), row=row, col=1)
    figure.update_layout(height=620, margin=dict(l=10, r=10, t=30, b=10), xaxis3_title="step")
    return figure
