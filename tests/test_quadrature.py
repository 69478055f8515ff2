import numpy as np
import pytest

from attribution.engine.quadrature import MAX_STEPS, METHODS, quadrature_rule


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("steps", [2, 3, 7, 50, 64, 513])
def test_weights_sum_to_one_and_points_lie_on_the_path(method, steps):
    alphas, weights = quadrature_rule(method, steps)
    assert alphas.shape == weights.shape == (steps,)
    assert abs(weights.sum() - 1.0) < 1e-12
    assert (weights > 0).all()
    assert (alphas >= 0).all() and (alphas <= 1).all()


def test_riemann_points_are_where_their_names_say():
    assert quadrature_rule("riemann_left", 4)[0].tolist() == [0, 0.25, 0.5, 0.75]
    assert quadrature_rule("riemann_right", 4)[0].tolist() == [0.25, 0.5, 0.75, 1.0]
    assert quadrature_rule("riemann_middle", 4)[0].tolist() == [0.125, 0.375, 0.625, 0.875]
    alphas, weights = quadrature_rule("riemann_trapezoid", 5)
    assert alphas.tolist() == [0, 0.25, 0.5, 0.75, 1.0]
    assert weights.tolist() == [0.125, 0.25, 0.25, 0.25, 0.125]


@pytest.mark.parametrize("degree", range(0, 20))
def test_gauss_legendre_with_n_points_integrates_polynomials_up_to_degree_2n_minus_1(degree):
    alphas, weights = quadrature_rule("gausslegendre", 10)
    assert np.dot(weights, alphas**degree) == pytest.approx(1 / (degree + 1), rel=1e-12)


@pytest.mark.parametrize("bad_steps", [0, -3, MAX_STEPS + 1, 2.5, "64", True, None])
def test_bad_steps_are_refused_with_the_received_value(bad_steps):
    with pytest.raises(ValueError, match="steps") as error:
        quadrature_rule("gausslegendre", bad_steps)
    assert repr(bad_steps) in str(error.value) or str(bad_steps) in str(error.value)


def test_trapezoid_needs_both_ends():
    with pytest.raises(ValueError, match="riemann_trapezoid needs steps >= 2"):
        quadrature_rule("riemann_trapezoid", 1)


def test_unknown_method_is_refused_with_the_known_ones_listed():
    with pytest.raises(ValueError, match="'simpson'.*|.*gausslegendre.*'simpson'"):
        quadrature_rule("simpson", 10)
