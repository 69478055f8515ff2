"""One state's attribution bars as plain HTML, for the Live page: they draw at once, where a Plotly
chart first waits for Plotly's 3.5 MB script (about 2 s in a fresh browser on two cores), and the
real-time player shows the very same markup at every step."""

from __future__ import annotations

from html import escape

import numpy as np

from attribution.presentation.plots import PUSHES_DOWN, PUSHES_UP


def bars_html(names, values, title: str = "") -> str:
    """Horizontal bars, largest |attribution| on top, blue where the part pushed the explained output
    up and red where it pushed it down, each bar's length relative to the largest, with its value.

    Args:
        names: (n,) strings (features with their units, or objects).
        values: (n,) attributions.
    """
    values = np.asarray(values, dtype=float).reshape(-1)
    names = list(names)
    if len(names) != len(values):
        raise ValueError(f"need one name per attribution; received {len(names)} names for {len(values)} values.")
    largest = max(float(np.abs(values).max(initial=0.0)), 1e-12)
    rows = []
    for i in np.argsort(-np.abs(values), kind="stable"):
        value, width = values[i], 50 * abs(values[i]) / largest
        colour = PUSHES_UP if value >= 0 else PUSHES_DOWN
        left = 50 if value >= 0 else 50 - width
        rows.append(
            '<div class="bar-row" style="display:flex;align-items:center;gap:0.5rem;height:1.5rem">'
            f'<div class="bar-name" style="flex:0 0 40%;text-align:right;overflow:hidden;white-space:nowrap;'
            f'text-overflow:ellipsis" title="{escape(names[i])}">{escape(names[i], quote=False)}</div>'
            '<div style="flex:1;position:relative;height:70%">'
            '<div style="position:absolute;left:50%;top:-2px;bottom:-2px;border-left:1px solid #888"></div>'
            f'<div style="position:absolute;top:0;bottom:0;left:{left:.2f}%;width:{width:.2f}%;background:{colour}">'
            '</div></div>'
            f'<div class="bar-value" style="flex:0 0 4.5rem;color:{colour};font-variant-numeric:tabular-nums">'
            f'{value:+.3g}</div></div>')
    heading = (f'<div class="bars-title" style="margin-bottom:0.25rem">{escape(title, quote=False)}</div>'
               if title else "")
    return (f'<div class="attribution-bars" role="figure" aria-label="{escape(title or "attribution bars")}" '
            f'style="font-size:0.85rem;margin-bottom:0.75rem">{heading}{"".join(rows)}</div>')
