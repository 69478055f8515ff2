"""The engine's maths: exactness, the IG paper's examples, batching invariances, bad input."""

import keras
import numpy as np
import pytest

from attribution import IGResult, integrated_gradients
from attribution.engine.examples import linear_model, paper_network_1, paper_network_2
from attribution.engine.quadrature import METHODS

from networks import mlp, small_cnn

# ---- exactness ----

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("steps", [2, 5, 64])
def test_exact_on_a_linear_model_for_every_rule_and_any_steps(method, steps, rng):
    weights, bias = rng.normal(size=(5, 3)), rng.normal(size=3)
    model = linear_model(weights, bias)
    states, baseline = rng.normal(size=(20, 5)) * 3, rng.normal(size=5)
    result = integrated_gradients(model, states, baseline=baseline, target="all", steps=steps, method=method)
    # IG of a linear model: (x - x') * w, for every output
    expected = (states - baseline)[:, None, :] * weights.T[None]
    np.testing.assert_allclose(result.attributions, expected, rtol=1e-5, atol=1e-5)
    assert np.abs(result.delta).max() < 1e-4


def test_the_ig_papers_example_gives_1_5_and_minus_0_5():
    result = integrated_gradients(paper_network_1(), [[3.0, 1.0]], steps=64)
    np.testing.assert_allclose(result.attributions, [[1.5, -0.5]], atol=1e-5)
    assert result.outputs[0, 0] == pytest.approx(1.0)
    assert abs(result.delta[0]) < 1e-5


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_middle", "riemann_trapezoid"])
def test_implementation_invariance_between_the_papers_two_networks(method, rng):
    f1, f2 = paper_network_1(), paper_network_2()
    states = rng.uniform(-3, 4, size=(200, 2))
    np.testing.assert_allclose(f1(states).numpy(), f2(states).numpy(), atol=1e-6)  # functionally equal ...
    a1 = integrated_gradients(f1, states, target=0, steps=128, method=method, refine=False).attributions
    a2 = integrated_gradients(f2, states, target=0, steps=128, method=method, refine=False).attributions
    np.testing.assert_allclose(a1, a2, atol=1e-5)  # ... so equal attributions


def test_attributions_are_not_gradient_times_input(rng):
    """A tanh network is not linear: IG must differ from gradient x input."""
    import tensorflow as tf

    model, states = mlp(), rng.normal(size=(10, 4)).astype(np.float32) * 2
    result = integrated_gradients(model, states, target=0, steps=128)
    x = tf.convert_to_tensor(states)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = model(x)[:, 0]
    grad_x_input = (tape.gradient(out, x) * x).numpy()
    assert np.abs(result.attributions - grad_x_input).max() > 1e-2
    assert np.abs(result.delta).max() < 1e-4  # while IG stays complete


# ---- the result ----

def test_result_holds_outputs_targets_and_the_completeness_gap(rng):
    model, states = mlp(), rng.normal(size=(7, 4))
    baseline = rng.normal(size=4)
    result = integrated_gradients(model, states, baseline=baseline, refine=False)
    assert isinstance(result, IGResult)
    assert result.attributions.dtype == np.float32 and result.attributions.shape == (7, 4)
    outputs, baseline_outputs = model(states).numpy(), model(np.tile(baseline, (7, 1))).numpy()
    np.testing.assert_allclose(result.outputs, outputs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.baseline_outputs, baseline_outputs, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.targets, outputs.argmax(axis=1))
    change = outputs[np.arange(7), result.targets] - baseline_outputs[np.arange(7), result.targets]
    np.testing.assert_allclose(result.output_change, change, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.delta, result.attributions.sum(axis=1) - result.output_change, atol=1e-6)
    assert result.steps.tolist() == [64] * 7 and result.method == "gausslegendre"


def test_default_baseline_is_zeros(rng):
    model, states = mlp(), rng.normal(size=(5, 4))
    default = integrated_gradients(model, states, target=1)
    zeros = integrated_gradients(model, states, target=1, baseline=np.zeros(4))
    np.testing.assert_array_equal(default.attributions, zeros.attributions)


def test_one_shared_baseline_equals_it_repeated_per_state(rng):
    model, states, baseline = mlp(), rng.normal(size=(6, 4)), rng.normal(size=4)
    shared = integrated_gradients(model, states, baseline=baseline, target="all", batch_size=60)
    repeated = integrated_gradients(model, states, baseline=np.tile(baseline, (6, 1)), target="all", batch_size=60)
    np.testing.assert_allclose(shared.attributions, repeated.attributions, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(shared.baseline_outputs, np.tile(model(baseline[None]).numpy(), (6, 1)), rtol=1e-5)


def test_completeness_under_one_percent_at_default_settings_on_a_smooth_network(rng):
    result = integrated_gradients(mlp(), rng.normal(size=(300, 4)) * 2)
    assert (np.abs(result.delta) <= 0.01 * np.abs(result.output_change) + 1e-6).all()
    assert result.steps.tolist() == [64] * 300  # a smooth network needs no more than the default


def test_refine_is_on_by_default_and_reports_the_steps_each_state_needed():
    # the paper's ReLU network has a kink mid-path: 3 Gauss-Legendre points are far from enough
    fixed = integrated_gradients(paper_network_1(), [[3.0, 1.0], [0.5, 0.0]], steps=3, refine=False)
    default = integrated_gradients(paper_network_1(), [[3.0, 1.0], [0.5, 0.0]], steps=3)
    assert fixed.relative_delta[0] > 0.4
    assert default.steps[0] > 3 and default.relative_delta[0] <= 0.01
    assert default.steps[1] == 3  # f = 0 along the whole second path: nothing to refine


# ---- batching invariances ----

def test_batched_equals_one_state_at_a_time(rng):
    model, states = mlp(), rng.normal(size=(12, 4))
    baselines = rng.normal(size=(12, 4))
    batched = integrated_gradients(model, states, baseline=baselines, refine=False)
    for i in range(12):
        single = integrated_gradients(model, states[i:i + 1], baseline=baselines[i], refine=False)
        np.testing.assert_allclose(batched.attributions[i], single.attributions[0], rtol=1e-5, atol=1e-6)
        assert batched.targets[i] == single.targets[0]


def test_all_targets_equal_per_target_calls(rng):
    model, states = mlp(), rng.normal(size=(9, 4))
    every = integrated_gradients(model, states, target="all", refine=False)
    assert every.attributions.shape == (9, 3, 4) and every.delta.shape == (9, 3)
    assert every.targets.tolist() == [[0, 1, 2]] * 9
    for t in range(3):
        one = integrated_gradients(model, states, target=t, refine=False)
        np.testing.assert_allclose(every.attributions[:, t], one.attributions, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(every.delta[:, t], one.delta, atol=1e-6)


def test_per_state_targets(rng):
    model, states = mlp(), rng.normal(size=(6, 4))
    targets = np.array([0, 2, 1, 1, 0, 2])
    mixed = integrated_gradients(model, states, target=targets, refine=False)
    every = integrated_gradients(model, states, target="all", refine=False)
    np.testing.assert_allclose(mixed.attributions, every.attributions[np.arange(6), targets], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(mixed.targets, targets)


@pytest.mark.parametrize("batch_size", [1, 7, 64, 65, 10_000])
def test_chunked_equals_unchunked(batch_size, rng):
    """batch_size 1 and 7 split each path's 64 points; 65 splits paths; 10,000 is one call."""
    model, states = mlp(), rng.normal(size=(11, 4))
    whole = integrated_gradients(model, states, target="all", batch_size=100_000, refine=False)
    chunked = integrated_gradients(model, states, target="all", batch_size=batch_size, refine=False)
    np.testing.assert_allclose(chunked.attributions, whole.attributions, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(chunked.outputs, whole.outputs, rtol=1e-5, atol=1e-6)


def test_image_policy_chunked_under_a_small_memory_budget(rng, monkeypatch):
    import attribution.engine.ig as ig

    model, states = small_cnn(), rng.uniform(size=(5, 12, 12, 2))
    whole = integrated_gradients(model, states, steps=32, refine=False)
    monkeypatch.setattr(ig, "MEMORY_BUDGET_BYTES", 20_000)  # a handful of rows per call
    small = integrated_gradients(small_cnn(), states, steps=32, refine=False)  # a new model: a new cached budget
    np.testing.assert_allclose(small.attributions, whole.attributions, rtol=1e-4, atol=1e-6)
    assert small.attributions.shape == (5, 12, 12, 2)
    assert (np.abs(small.delta) <= 0.01 * np.abs(small.output_change) + 1e-5).all()


def test_the_memory_budget_counts_the_layers_inside_a_wrapped_policy():
    from attribution import explain
    from attribution.engine.ig import MEMORY_BUDGET_BYTES, _rows_per_call

    obs = keras.Input((4,))
    hidden = keras.layers.Dense(64, activation="tanh")(obs)
    policy = keras.Model(obs, {"logits": keras.layers.Dense(2)(hidden), "value": keras.layers.Dense(1)(hidden)})
    wrapped = explain.action_probabilities(policy)
    # the row 4 + the wrapper's input layer 4 + the nested policy's two heads (2 + 1) + inside it: input 4,
    # Dense 64, heads 2 and 1 (the softmax is an op, not a layer)
    floats_per_row = 4 + 4 + 3 + 4 + 64 + 2 + 1
    assert _rows_per_call(wrapped, (4,)) == MEMORY_BUDGET_BYTES // (3 * 4 * floats_per_row)


def test_no_retracing_when_n_or_targets_change(rng):
    from attribution.engine import backend
    from attribution.engine.ig import explain_paths

    model = mlp()
    for n, target in [(1, None), (5, 0), (17, "all"), (3, np.array([2, 1, 0]))]:
        integrated_gradients(model, rng.normal(size=(n, 4)), target=target, steps=8 * n)
    compiled = [key for key in backend._cache[model] if isinstance(key, tuple) and explain_paths in key]
    assert len(compiled) == 1  # one compiled function for every N, target and steps


# ---- refine ----

def test_refine_raises_steps_until_the_gap_is_under_tolerance(rng):
    model, states = mlp(), rng.normal(size=(30, 4)) * 3
    coarse = integrated_gradients(model, states, steps=2, method="riemann_trapezoid", refine=False)
    assert (coarse.relative_delta > 0.01).any()  # the two ends alone are far from enough
    refined = integrated_gradients(model, states, steps=2, method="riemann_trapezoid", refine=True, rtol=0.01)
    assert (np.abs(refined.delta) <= 0.01 * np.abs(refined.output_change) + 1e-6).all()
    assert refined.steps.max() > 2 and refined.steps.min() >= 2
    # the refined attributions themselves, not only their sum, come close to the integral
    exact = integrated_gradients(model, states, steps=1024, refine=False).attributions
    scale = np.abs(exact).max(axis=1)
    assert (np.abs(refined.attributions - exact).max(axis=1) <= 0.05 * scale).all()
    assert np.abs(refined.attributions - exact).mean() < 0.2 * np.abs(coarse.attributions - exact).mean()


def test_refine_puts_the_points_where_the_output_jumps():
    """A step at x = 0.3 along the path: Gauss-Legendre everywhere needs hundreds of points for 1%; the
    refinement splits the path around the step and needs far fewer, with the attribution exact."""
    inputs = keras.Input((1,))
    step = keras.layers.Dense(1, activation="sigmoid", kernel_initializer=keras.initializers.Constant(400.0),
                              bias_initializer=keras.initializers.Constant(-120.0))  # sigmoid(400 (x - 0.3))
    model = keras.Model(inputs, step(inputs))
    uniform = {n: integrated_gradients(model, [[1.0]], target=0, steps=n, refine=False).relative_delta[0]
               for n in (16, 32, 64, 128, 256)}
    assert uniform[128] > 0.01  # doubling every point would go to 256 or beyond
    refined = integrated_gradients(model, [[1.0]], target=0, steps=16)
    assert refined.relative_delta[0] <= 0.01 and refined.steps[0] <= 128
    np.testing.assert_allclose(refined.attributions[0, 0], refined.output_change[0], rtol=0.01)


def test_refine_stops_at_max_steps(rng):
    # the paper's ReLU network has a kink: left Riemann sums converge only slowly
    refined = integrated_gradients(paper_network_1(), [[3.0, 1.0]], steps=3, method="riemann_left",
                                   refine=True, rtol=1e-9, max_steps=48)
    assert refined.steps.tolist() == [48]
    fewer = integrated_gradients(paper_network_1(), [[3.0, 1.0]], steps=64, method="riemann_left", rtol=1e-9,
                                 max_steps=48)  # a budget below the steps asked for refines nothing
    assert fewer.steps.tolist() == [64]


# ---- bad input: a ValueError that names what was received ----

@pytest.mark.parametrize(
    "states, message",
    [
        (np.zeros((3, 5)), r"states must have shape \(N, 4\).*received shape \(3, 5\)"),
        (np.zeros(4), r"received shape \(4,\) \(one state\? pass states\[None\]\)"),
        (np.zeros((0, 4)), r"N >= 1; received shape \(0, 4\)"),
        (
            [[1.0, np.nan, 0, 0]],
            r"states must be finite; received 1 NaN or inf value\(s\), the first at index \(0, 1\): nan",
        ),
        ([[1.0, 0, np.inf, 0]], r"states must be finite.*index \(0, 2\): inf"),
        ([["a", "b", "c", "d"]], r"states must be an array of numbers"),
    ],
)
def test_bad_states(states, message):
    with pytest.raises(ValueError, match=message):
        integrated_gradients(mlp(), states)


@pytest.mark.parametrize("baseline, message", [
    (np.zeros(3), r"baseline must have shape \(4,\).*or \(2, 4\).*received shape \(3,\)"),
    (np.full(4, np.nan), r"baseline must be finite; received 4 NaN"),
])
def test_bad_baseline(baseline, message):
    with pytest.raises(ValueError, match=message):
        integrated_gradients(mlp(), np.zeros((2, 4)), baseline=baseline)


@pytest.mark.parametrize("target, message", [
    (3, r"target must lie in \[0, 3\) for a model with 3 outputs; received 3"),
    (-1, r"target must lie in \[0, 3\).*received -1"),
    (np.array([0, 5]), r"received 5"),
    (np.array([0, 1, 2]), r"int array of shape \(2,\); received shape \(3,\)"),
    ("best", r"received 'best'"),
    (1.5, r"integer output index.*received 1.5"),
])
def test_bad_target(target, message):
    with pytest.raises(ValueError, match=message):
        integrated_gradients(mlp(), np.zeros((2, 4)), target=target)


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0}, r"steps must be between 1 and \d+; received 0"),
    ({"steps": 100_000}, r"received 100000"),
    ({"method": "simpson"}, r"method must be one of .*; received 'simpson'"),
    ({"batch_size": 0}, r"batch_size must be None or a positive integer; received 0"),
    ({"refine": True, "rtol": 2}, r"rtol must be a number between 0 and 1; received 2"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        integrated_gradients(mlp(), np.zeros((2, 4)), **kwargs)


def test_a_model_with_several_outputs_is_refused_with_a_pointer_to_the_wrappers():
    x = keras.Input((4,))
    two_heads = keras.Model(x, {"logits": keras.layers.Dense(2)(x), "value": keras.layers.Dense(1)(x)})
    with pytest.raises(ValueError, match="must return one array.*attribution.explain"):
        integrated_gradients(two_heads, np.zeros((2, 4)))


def test_not_a_model():
    with pytest.raises(ValueError, match="model must be a keras.Model; received function"):
        integrated_gradients(lambda x: x, np.zeros((2, 4)))
