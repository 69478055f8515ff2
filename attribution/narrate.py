"""Plain-language sentences from the numbers, for people who are not engineers."""

from __future__ import annotations


def completeness_sentence(output_name: str, at_state: float, at_baseline: float, attribution_sum: float) -> str:
    """'attributions sum to +0.42; P(push right) rose from 0.50 at the baseline to 0.92: gap 0.2%'."""
    change = at_state - at_baseline
    verb = "rose" if change > 0 else "fell" if change < 0 else "stayed"
    movement = (f"{output_name} {verb} from {_number(at_baseline)} at the baseline to {_number(at_state)}" if change
                else f"{output_name} stayed at {_number(at_state)}")
    gap = abs(attribution_sum - change)
    relative = f"gap {100 * gap / abs(change):.1f}%" if change else f"gap {gap:.2g}"
    return f"attributions sum to {_number(attribution_sum, signed=True)}; {movement}: {relative}"


def _number(value: float, signed: bool = False) -> str:
    """Two decimals for everyday magnitudes, three significant digits otherwise."""
    sign = "+" if signed else ""
    return f"{value:{sign}.2f}" if value == 0 or 0.01 <= abs(value) < 1000 else f"{value:{sign}.3g}"
