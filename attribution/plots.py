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
