"""Plotly figure builders: pure functions from arrays and names to ``go.Figure``."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from attribution.engine.quadrature import METHOD_LABELS

PUSHES_UP = "#1f77b4"    # blue: the feature raised the explained output
PUSHES_DOWN = "#d62728"  # red: the feature lowered it


VALUES_COLUMN_PX = 72  # right margin for the values column: '+0.000168' at Plotly's default 12 px font


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
    bars = go.Bar(x=values[order], y=[names[i] for i in order], orientation="h",
                  marker_color=[PUSHES_UP if values[i] >= 0 else PUSHES_DOWN for i in order],
                  hovertemplate="%{y}: %{x:+.4g}<extra></extra>")
    # The values stand in a column right of the plot, so none is cut off beside a short bar however
    # narrow the chart (text beside the bar was clipped at the plot's edge in a narrow column).
    values_column = [dict(x=1, xref="paper", xanchor="left", xshift=6, y=names[i], yref="y", showarrow=False,
                          text=f"{values[i]:+.3g}", font=dict(color=PUSHES_UP if values[i] >= 0 else PUSHES_DOWN))
                     for i in order]
    return go.Figure(
        data=[bars],
        layout=dict(  # one layout dict: a third of the time of update_layout + add_vline
            title=dict(text=title),
            xaxis=dict(title=dict(text="attribution<br>+ raises the output, − lowers it")),
            annotations=values_column,
            margin=dict(l=10, r=VALUES_COLUMN_PX, t=40 if title else 10, b=10),
            height=80 + 36 * len(values),
            showlegend=False,
            shapes=[
                dict(type="line", x0=0, x1=0, xref="x", y0=0, y1=1, yref="paper", line=dict(width=1, color="#888"))
            ],
        ),
    )


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
    for c, (start, stop) in enumerate(zip(starts, edges[1:], strict=True)):
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
    steps, values = downsample_extremes(attributions)
    actions = np.asarray(actions)
    if len(steps) < len(actions):
        actions, rewards = actions[steps], downsample_extremes(rewards)[1][:, 0]
    traces = []
    if kind == "heatmap":
        limit = float(np.abs(values).max()) or 1.0
        traces.append(go.Heatmap(z=values.T, x=steps, y=list(feature_names), colorscale="RdBu", zmid=0, zmin=-limit,
                                 zmax=limit, colorbar=dict(title=dict(text="attribution"), len=0.6, y=0.7),
                                 hovertemplate="step %{x}<br>%{y}: %{z:+.3g}<extra></extra>"))
    elif kind == "lines":
        traces += [go.Scatter(x=steps, y=values[:, i], mode="lines", name=name,
                              hovertemplate=f"step %{{x}}<br>{name}: %{{y:+.3g}}<extra></extra>")
                   for i, name in enumerate(feature_names)]
    else:
        raise ValueError(f'kind must be "lines" or "heatmap"; received {kind!r}.')
    action_axis = dict(title=dict(text="action"))
    if actions.ndim == 1 and action_names is not None:
        labels = [action_names[int(a)] for a in actions]
        traces.append(
            go.Scatter(
                x=steps,
                y=actions,
                mode="markers",
                name="action",
                marker=dict(size=6, color="#555"),
                text=labels,
                hovertemplate="step %{x}: %{text}<extra></extra>",
                xaxis="x2",
                yaxis="y2",
            )
        )
        action_axis.update(tickvals=list(range(len(action_names))), ticktext=list(action_names))
    else:
        traces.append(go.Scatter(x=steps, y=actions.reshape(len(actions), -1)[:, 0], mode="lines", name="action",
                                 line_color="#555", xaxis="x2", yaxis="y2"))
    traces.append(go.Bar(x=steps, y=np.asarray(rewards, dtype=float), name="reward", marker_color="#2ca02c",
                         hovertemplate="step %{x}: reward %{y:+.3g}<extra></extra>", xaxis="x3", yaxis="y3"))
    layout = _stacked_rows([0.64, 0.18, 0.18], ["attribution", action_axis, "reward"], spacing=0.03)
    layout.update(height=460, margin=dict(l=10, r=10, t=10, b=10), hovermode="closest", clickmode="event+select",
                  legend=dict(orientation="h", y=-0.12))
    if cursor is not None:
        layout["shapes"] = [dict(type="line", xref="x3", x0=cursor, x1=cursor, yref="paper", y0=0, y1=1,
                                 line=dict(width=2, dash="dot", color="#444"))]
    return go.Figure(data=traces, layout=layout)


def _stacked_rows(heights, y_axes, spacing: float) -> dict:
    """Layout for rows of plots stacked on one shared x axis, drawn from the top (what
    ``make_subplots(shared_xaxes=True)`` gives, built directly: 3-4x quicker, which a live page
    redrawing at every step feels). Row r uses axes x{r}, y{r}; heights are fractions of the plot.

    Args:
        y_axes: per row, the y axis title, or a dict of y axis settings.
    """
    usable = 1 - spacing * (len(heights) - 1)
    layout, top = {}, 1.0
    for row, (height, y_axis) in enumerate(zip(heights, y_axes, strict=True), start=1):
        suffix = "" if row == 1 else str(row)
        bottom = max(0.0, top - height * usable)
        y_axis = dict(title=dict(text=y_axis)) if isinstance(y_axis, str) else dict(y_axis)
        layout[f"yaxis{suffix}"] = dict(y_axis, domain=[bottom, top], anchor=f"x{suffix}")
        last = row == len(heights)
        layout[f"xaxis{suffix}"] = dict(anchor=f"y{suffix}", showticklabels=last,
                                        **({"title": dict(text="step")} if last else {"matches": f"x{len(heights)}"}))
        top = bottom - spacing
    return layout


def comparison_heatmaps(feature_names, first, second, first_label: str, second_label: str) -> go.Figure:
    """Two episodes' attributions on one time axis, and their difference at matched steps.

    Args:
        first, second: (T1, F) and (T2, F) attributions of the same explained output.
    Rows: first, second, first − second over the min(T1, T2) steps both have.
    """
    a_steps, a = downsample_extremes(first)
    b_steps, b = downsample_extremes(second)
    matched = min(len(first), len(second))
    d_steps, difference = downsample_extremes(np.asarray(first, float)[:matched] - np.asarray(second, float)[:matched])
    limit = float(max(np.abs(a).max(initial=0), np.abs(b).max(initial=0))) or 1.0
    titles = (first_label, second_label, f"{first_label} − {second_label}")
    traces = [
        go.Heatmap(
            z=values.T,
            x=steps,
            y=list(feature_names),
            colorscale="RdBu",
            zmid=0,
            zmin=-limit,
            zmax=limit,
            showscale=row == 1,
            colorbar=dict(title=dict(text="attribution"), len=0.9),
            name=title,
            hovertemplate="step %{x}<br>%{y}: %{z:+.3g}<extra></extra>",
            xaxis="x" if row == 1 else f"x{row}",
            yaxis="y" if row == 1 else f"y{row}",
        )
        for row, (steps, values, title) in enumerate(
            zip((a_steps, b_steps, d_steps), (a, b, difference), titles, strict=True), start=1
        )
    ]
    layout = _stacked_rows([1 / 3] * 3, ["", "", ""], spacing=0.08)
    layout.update(
        height=620,
        margin=dict(l=10, r=10, t=30, b=10),
        annotations=[
            dict(
                text=title,
                x=0.5,
                xref="paper",
                xanchor="center",
                y=layout["yaxis" + ("" if row == 1 else str(row))]["domain"][1],
                yref="paper",
                yanchor="bottom",
                showarrow=False,
            )
            for row, title in enumerate(titles, start=1)
        ],
    )
    return go.Figure(data=traces, layout=layout)


def convergence_chart(steps, relative_gap: dict, used_steps: int, used_method: str) -> go.Figure:
    """Completeness gap (percent of the output's change, log scale) against path points, one line per rule."""
    traces = [go.Scatter(x=list(steps), y=100 * np.maximum(np.asarray(gaps, float), 1e-9), mode="lines+markers",
                         name=METHOD_LABELS.get(method, method), line=dict(width=3 if method == used_method else 1.5))
              for method, gaps in relative_gap.items()]
    layout = dict(
        height=360,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", y=-0.25),
        xaxis=dict(type="log", title=dict(text="points on the path"), tickvals=list(steps)),
        yaxis=dict(type="log", title=dict(text="completeness gap (% of the change)")),
        shapes=[
            dict(
                type="line",
                xref="x",
                x0=used_steps,
                x1=used_steps,
                yref="paper",
                y0=0,
                y1=1,
                line=dict(dash="dot", color="#444"),
            ),
            dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=1, y1=1, line=dict(dash="dash", color="#d62728")),
        ],
        annotations=[
            dict(
                text="the app's setting",
                x=np.log10(used_steps),
                xref="x",
                y=1,
                yref="paper",
                showarrow=False,
                yanchor="bottom",
            )
        ],
    )
    return go.Figure(data=traces, layout=layout)


def grouped_bars(feature_names, series: dict) -> go.Figure:
    """One group of horizontal bars per feature, one bar per named series of (F,) attributions."""
    traces = [go.Bar(y=list(feature_names), x=np.asarray(values, float).reshape(-1), name=name, orientation="h",
                     hovertemplate=f"{name}<br>%{{y}}: %{{x:+.3g}}<extra></extra>") for name, values in series.items()]
    return go.Figure(data=traces, layout=dict(
        barmode="group", height=140 + 30 * len(feature_names) * max(1, len(series)) // 2,
        margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.3),
        xaxis=dict(title=dict(text="attribution"), zeroline=True), yaxis=dict(autorange="reversed")))


def agreement_heatmap(names, matrix) -> go.Figure:
    """Rank correlations between methods, -1 to 1."""
    names = list(names)
    return go.Figure(data=[go.Heatmap(z=np.asarray(matrix, float), x=names, y=names, zmin=-1, zmax=1, colorscale="RdBu",
                                      text=np.round(np.asarray(matrix, float), 2), texttemplate="%{text}",
                                      hovertemplate="%{y} vs %{x}: %{z:+.2f}<extra></extra>")],
                     layout=dict(height=320, margin=dict(l=10, r=10, t=10, b=10), yaxis=dict(autorange="reversed")))


def randomisation_chart(layers, similarity) -> go.Figure:
    """Rank correlation with the trained network's attributions as layers are randomised from the top."""
    labels = ["trained"] + [f"+ {name}" for name in layers]
    return go.Figure(data=[go.Scatter(x=labels, y=[1.0, *np.asarray(similarity, float)], mode="lines+markers")],
                     layout=dict(height=320, margin=dict(l=10, r=10, t=10, b=10),
                                 yaxis=dict(range=[-1.05, 1.05], title=dict(text="rank correlation with the trained")),
                                 xaxis=dict(title=dict(text="layers randomised, from the top"))))


def faithfulness_chart(deletion, insertion, random_deletion, random_insertion, output_name: str) -> go.Figure:
    """Deletion and insertion curves, attribution order against random order."""
    k = np.arange(len(deletion))
    styles = [("deletion, attribution order", deletion, "#d62728", "solid"),
              ("deletion, random order", random_deletion, "#d62728", "dot"),
              ("insertion, attribution order", insertion, "#1f77b4", "solid"),
              ("insertion, random order", random_insertion, "#1f77b4", "dot")]
    traces = [go.Scatter(x=k, y=np.asarray(values, float), name=name, mode="lines+markers",
                         line=dict(color=color, dash=dash)) for name, values, color, dash in styles]
    return go.Figure(data=traces, layout=dict(
        height=360, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.25),
        xaxis=dict(title=dict(text="features replaced, most important first"), dtick=1),
        yaxis=dict(title=dict(text=output_name))))


def spread_bars(names, means, spreads, top: int = 12) -> go.Figure:
    """Horizontal bars of mean attributions with ± one spread (a standard deviation across episodes) as
    error bars; the ``top`` largest |mean| only, largest on top, signed colours."""
    means, spreads = np.asarray(means, float), np.asarray(spreads, float)
    order = np.argsort(np.abs(means))[-top:]  # plotly draws the first bar at the bottom
    labels = [list(names)[i] for i in order]
    bars = go.Bar(x=means[order], y=labels, orientation="h",
                  error_x=dict(type="data", array=spreads[order], color="#555", thickness=1.2),
                  marker_color=[PUSHES_UP if means[i] >= 0 else PUSHES_DOWN for i in order],
                  customdata=spreads[order], hovertemplate="%{y}: %{x:+.4g} ± %{customdata:.2g}<extra></extra>")
    return go.Figure(data=[bars], layout=dict(
        height=120 + 28 * len(order), margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(title=dict(text="mean attribution per episode, ± its spread across episodes"), zeroline=True)))


def gap_histogram(relative_gaps, tolerance: float = 0.01) -> go.Figure:
    """How far each state's attributions are from adding up to the output's change, as a percentage of
    that change, on a log scale (a decade per tick, 1e-5% and below in the first bar, 100% and above in
    the last); a dashed line at the tolerance refinement aims for."""
    exponents = np.log10(np.clip(100 * np.asarray(relative_gaps, float), 1e-5, 100))
    edges = np.linspace(-5, 2, 36)
    counts, _ = np.histogram(exponents, edges)
    centres = (edges[:-1] + edges[1:]) / 2
    ticks = np.arange(-5, 3)
    return go.Figure(data=[go.Bar(x=centres, y=counts, width=edges[1] - edges[0], marker_color="#7f7f7f",
                                  customdata=10.0 ** centres, hovertemplate="about %{customdata:.2g}%: %{y} states"
                                                                            "<extra></extra>")],
                     layout=dict(height=260, margin=dict(l=10, r=10, t=10, b=10), bargap=0.05,
                                 shapes=[dict(type="line", x0=np.log10(100 * tolerance), x1=np.log10(100 * tolerance),
                                              y0=0, y1=1, yref="paper", line=dict(dash="dash", color="#333"))],
                                 xaxis=dict(title=dict(text="completeness gap, % of the output's change (log scale)"),
                                            tickvals=ticks, ticktext=[f"{10.0 ** t:.{max(0, -t)}f}%" for t in ticks],
                                            range=[-5, 2]),
                                 yaxis=dict(title=dict(text="states"))))


def training_lines(training_steps, names, values, top: int = 8) -> go.Figure:
    """Each group's mean |attribution| (values (P, G)) against training steps (P,): the ``top`` groups
    largest at the last checkpoint."""
    values = np.asarray(values, float)
    order = np.argsort(-values[-1])[:top]
    traces = [go.Scatter(x=np.asarray(training_steps), y=values[:, i], name=list(names)[i], mode="lines+markers",
                         hovertemplate=f"{list(names)[i]}<br>step %{{x:,}}: %{{y:.3g}}<extra></extra>") for i in order]
    return go.Figure(data=traces, layout=dict(
        height=360, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.25),
        xaxis=dict(title=dict(text="training steps")), yaxis=dict(title=dict(text="mean |attribution|"))))
