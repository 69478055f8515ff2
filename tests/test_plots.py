"""The Plotly figures: what they draw, checked on the figure objects."""

import numpy as np
import pytest

from attribution.presentation.plots import MAX_COLUMNS, PUSHES_DOWN, PUSHES_UP, attribution_bars, attribution_timeline


def test_bars_are_sorted_by_magnitude_with_signed_colours():
    figure = attribution_bars(["a", "b", "c"], [0.1, -0.5, 0.3], title="why P(left)")
    bars = figure.data[0]
    assert list(bars.y) == ["a", "c", "b"]  # plotly draws the first at the bottom: the largest ends on top
    assert list(bars.marker.color) == [PUSHES_UP, PUSHES_UP, PUSHES_DOWN]
    assert figure.layout.title.text == "why P(left)" and figure.layout.shapes[0].x0 == 0


def test_every_bars_value_stands_in_a_column_right_of_the_plot_where_nothing_clips_it():
    figure = attribution_bars(["angle", "position"], [0.0113, -0.000168])
    assert not figure.data[0].text  # no text beside the bars: a short bar's was cut off at the plot's edge
    labels = {a.y: a for a in figure.layout.annotations}
    assert labels["angle"].text == "+0.0113" and labels["position"].text == "-0.000168"
    assert all(a.xref == "paper" and a.x == 1 and a.xanchor == "left" for a in labels.values())
    assert labels["position"].font.color == PUSHES_DOWN
    assert figure.layout.margin.r >= 70  # room for '+0.000168'


def test_bars_need_one_name_per_value():
    with pytest.raises(ValueError, match="received 2 names for 3 values"):
        attribution_bars(["a", "b"], [1, 2, 3])


@pytest.mark.parametrize("kind", ["lines", "heatmap"])
def test_timeline_has_three_rows_on_one_time_axis(kind):
    attributions = np.arange(20.0).reshape(10, 2)
    figure = attribution_timeline(["a", "b"], attributions, np.arange(10) % 2, np.ones(10), ["left", "right"],
                                  kind=kind, cursor=4)
    layout = figure.layout
    assert layout.xaxis.matches == "x3" and layout.xaxis2.matches == "x3" and layout.xaxis3.title.text == "step"
    assert layout.yaxis.domain[0] > layout.yaxis2.domain[1] > layout.yaxis2.domain[0] > layout.yaxis3.domain[1]
    assert [(t.type, t.xaxis or "x") for t in figure.data][-2:] == [("scatter", "x2"), ("bar", "x3")]
    if kind == "heatmap":
        np.testing.assert_array_equal(figure.data[0].z, attributions.T)
    else:
        assert [t.name for t in figure.data[:2]] == ["a", "b"]
        np.testing.assert_array_equal(figure.data[1].y, attributions[:, 1])
    assert list(layout.yaxis2.ticktext) == ["left", "right"]
    assert layout.shapes[0].x0 == 4 and layout.shapes[0].xref == "x3"


def test_long_episodes_are_drawn_downsampled():
    figure = attribution_timeline(["a"], np.random.default_rng(0).normal(size=(5000, 1)), np.zeros(5000, int),
                                  np.ones(5000), ["noop"])
    assert len(figure.data[0].x) == MAX_COLUMNS and len(figure.data[-1].x) == MAX_COLUMNS


def test_timeline_kind_is_checked():
    with pytest.raises(ValueError, match='kind must be "lines" or "heatmap"; received \'bars\''):
        attribution_timeline(["a"], np.zeros((3, 1)), np.zeros(3, int), np.zeros(3), kind="bars")


def test_trust_charts_draw_what_they_are_given():
    from attribution.presentation.plots import (
        agreement_heatmap,
        convergence_chart,
        faithfulness_chart,
        grouped_bars,
        randomisation_chart,
    )

    convergence = convergence_chart(
        (8, 16), {"gausslegendre": np.array([1e-3, 1e-4]), "riemann_left": np.array([0.2, 0.1])}, 16, "gausslegendre"
    )
    assert [t.name for t in convergence.data] == ["Gauss-Legendre", "Riemann, left ends"]
    assert [t.line.width for t in convergence.data] == [3, 1.5]  # the rule in use stands out
    np.testing.assert_allclose(convergence.data[1].y, [20.0, 10.0])  # in percent
    assert convergence.layout.shapes[0].x0 == 16
    bars = grouped_bars(["a", "b"], {"zeros": [1, 2], "mean": [3, 4]})
    assert bars.layout.barmode == "group" and list(bars.data[1].x) == [3, 4]
    assert agreement_heatmap(["x", "y"], [[1, 0.5], [0.5, 1]]).data[0].zmin == -1
    assert list(randomisation_chart(["top"], [0.2]).data[0].y) == [1.0, 0.2]
    curves = faithfulness_chart([3, 1, 0], [0, 2, 3], [3, 2, 0], [0, 1, 3], "P(left)")
    assert len(curves.data) == 4 and curves.layout.yaxis.title.text == "P(left)"


def test_html_bars_put_the_largest_first_with_signed_colours_and_escaped_names():
    from attribution.presentation.html_bars import bars_html

    markup = bars_html(["small", "<b>big</b>", "middle"], [0.1, -0.4, 0.2], title="why P(a & b)")
    assert "<b>big</b>" not in markup and "&lt;b&gt;big&lt;/b&gt;" in markup and "why P(a &amp; b)" in markup
    rows = markup.split('class="bar-row"')[1:]
    assert [row.split("</div>")[0].rsplit(">", 1)[1] for row in rows] == ["&lt;b&gt;big&lt;/b&gt;", "middle", "small"]
    assert f"left:0.00%;width:50.00%;background:{PUSHES_DOWN}" in rows[0]  # the largest spans half, leftwards
    assert f"left:50.00%;width:25.00%;background:{PUSHES_UP}" in rows[1]
    assert ">-0.4</div>" in rows[0] and ">+0.1</div>" in rows[2]
    with pytest.raises(ValueError, match="one name per attribution; received 1 names for 2 values"):
        bars_html(["a"], [1.0, 2.0])
