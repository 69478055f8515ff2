"""The app's pages, run headless by Streamlit's AppTest."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 60  # TensorFlow's import alone takes seconds


@pytest.fixture
def app():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def test_opens_on_how_ig_works_with_the_papers_answer(app):
    assert app.title[0].value == "How Integrated Gradients works"
    assert "attributions sum to +1.00; f rose from 0.00 at the baseline to 1.00: gap 0.0%" == app.info[0].value
    assert "(1.5, −0.5)" in app.caption[0].value


def test_refine_reports_the_points_it_added(app):
    app.number_input[0].set_value(3).run()
    assert not app.exception
    assert "gap 0.0%" in app.info[0].value or "gap 0." in app.info[0].value
    assert app.caption[0].value.startswith("Refined from 3 to ")
    app.toggle[0].set_value(False).run()
    assert app.info[0].value.endswith("gap 44.4%")


def test_moving_a_slider_recomputes(app):
    x2 = next(s for s in app.slider if s.label == "x2")
    x2.set_value(-1.0).run()
    assert not app.exception
    # at (3, -1): ReLU(x2) = 0, so x2 does nothing and x1 carries f = 2 alone
    assert app.info[0].value.startswith("attributions sum to +2.00; f rose from 0.00 at the baseline to 2.00")


def test_a_bad_setting_gets_a_message_not_a_crash(app):
    next(s for s in app.selectbox if s.label == "Method").set_value("riemann_trapezoid")
    app.number_input[0].set_value(1).run()
    assert not app.exception
    assert "riemann_trapezoid needs steps >= 2" in app.error[0].value
