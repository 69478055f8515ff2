"""The driving agent (highway-env's highway-fast-v0): its table in metres, one group per vehicle, and
the words and pictures that name the vehicles."""

import keras
import numpy as np
import pytest

from attribution import integrated_gradients, make_env
from attribution.rl.highway import FEATURE_NAMES, SLOTS, Vehicles, where
from attribution.rl.policies import load_policy
from attribution.training.evaluate import crash_rate

HIGHWAY = "highway-fast-v0"


def table(*others):
    """The ego car in the middle lane at 25 m/s, then the given vehicles (x, y, vx), then empty slots."""
    rows = [[1.0, 0.0, 4.0, 25.0, 0.0]] + [[1.0, x, y, vx, 0.0] for x, y, vx in others]
    rows += [[0.0] * 5] * (len(SLOTS) - len(rows))
    return np.array(rows, np.float32)


def test_make_env_gives_the_table_in_metres_with_the_ego_car_at_its_origin_and_a_picture():
    env = make_env(HIGHWAY, render_mode="rgb_array")
    observation, _ = env.reset(seed=0)
    assert observation.shape == (5, 5) and observation[0, 0] == 1 and observation[0, 1] == 0.0
    assert observation[0, 3] > 15  # its speed in m/s, not highway-env's normalised number
    assert np.abs(observation[1:, 1]).max() > 5  # other cars metres away
    frame = env.render()
    assert frame.shape == (150, 600, 3) and frame.max() > 0  # drawn (SDL's dummy driver would leave it black)
    env.close()
    assert FEATURE_NAMES[:3] == ("ego car: present", "ego car: x (m)", "ego car: y (m)")


def test_each_vehicle_is_one_group_and_the_group_sums_are_the_total(rng):
    model = keras.Sequential([keras.Input((5, 5)), keras.layers.Flatten(), keras.layers.Dense(16, activation="tanh"),
                              keras.layers.Dense(5)])
    states = np.stack([table((14.0, 0.0, -3.0), (-8.0, 4.0, 2.0)), table((30.0, -4.0, 1.0))])
    result = integrated_gradients(model, states, target=np.array([0, 3]), groups=Vehicles().groups(states))
    assert result.group_sums.shape == (2, 5)
    np.testing.assert_allclose(result.group_sums, result.attributions.sum(axis=2), atol=1e-6)
    np.testing.assert_allclose(result.group_sums.sum(axis=1), result.attributions.sum(axis=(1, 2)), atol=1e-6)


def test_where_names_distance_lane_and_relative_speed():
    assert where(np.array([1, 14.2, 0.3, -3.1, 0])) == "14 m ahead in its lane, 3 m/s slower"
    assert where(np.array([1, -8.0, 4.0, 2.0, 0])) == "8 m behind in the lane to its right, 2 m/s faster"
    assert where(np.array([1, 30.0, -8.1, 0.2, 0])) == "30 m ahead, 2 lanes to its left, at its speed"


def test_empty_slots_are_said_to_be_empty_and_get_no_bar():
    vehicles = Vehicles()
    observation = table((14.0, 0.0, -3.0))
    assert vehicles.present(observation).tolist() == [True, True, False, False, False]
    descriptions = vehicles.descriptions(observation)
    assert descriptions[1] == "the car 14 m ahead in its lane, 3 m/s slower ({value})"
    assert descriptions[2:] == ["an empty slot ({value})"] * 3
    assert descriptions[0].startswith("its own speed and place ({value}), 25 m/s in lane 2")
    assert set(vehicles.boxes(observation)) == {"ego car", "vehicle 1"}


def test_boxes_sit_where_highway_env_draws_the_cars():
    boxes = Vehicles().boxes(table((10.0, -4.0, 0.0)))
    x0, y0, x1, y1 = boxes["ego car"]
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == (180.0, 75.0) and x1 - x0 == pytest.approx(27.5)
    x0, y0, x1, y1 = boxes["vehicle 1"]
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == (235.0, 53.0)  # 10 m ahead, a lane (4 m) to the left, 5.5 px a metre


def test_near_misses_are_the_closest_approaches_in_the_ego_lane():
    gaps = [30, 20, 9, 6, 8, 25, 40, 7, 12]  # two approaches: 6 m at step 3, 7 m at step 7
    observations = np.stack([table((gap, 0.0, -2.0), (3.0, 4.0, 0.0)) for gap in gaps])  # the car beside never counts
    found = Vehicles().near_misses(observations)
    assert [step for step, _ in found] == [3, 7]
    assert found[0][1] == "step 3: the car 6 m ahead in its lane, 2 m/s slower"


@pytest.mark.slow
def test_the_shipped_driving_agent_seldom_crashes():
    policy = load_policy(HIGHWAY)
    assert policy.info.heads == ("logits", "value") and policy.info.eval_episodes == 50
    assert crash_rate(policy, HIGHWAY, episodes=5) <= 0.2  # a few seeds; the 50-episode figure is in the README


def test_the_careful_driver_keeps_its_distance_and_keeps_right():
    from attribution.training.dagger import FASTER, IDLE, LEFT, RIGHT, SLOWER, DAggerConfig, careful_driver

    config = DAggerConfig()
    closing_in = table((14.0, 0.0, -6.0), (10.0, 4.0, 0.0), (10.0, -4.0, 0.0))  # both other lanes taken
    assert careful_driver(closing_in, config) == SLOWER
    assert careful_driver(table((14.0, 0.0, -6.0), (10.0, -4.0, 0.0)), config) == RIGHT  # the right lane is free
    assert careful_driver(table((14.0, 0.0, -6.0), (10.0, 4.0, 0.0)), config) == LEFT
    middle = table((80.0, 4.0, 0.0))  # in the middle lane, the right lane's car far ahead: keep right
    assert careful_driver(middle, config) == RIGHT
    open_road, following = table(), table((30.0, 0.0, 0.0))
    open_road[0, 2] = following[0, 2] = 8.0  # in the right lane: speed up on an open road, follow a car 30 m ahead
    assert careful_driver(open_road, config) == FASTER and careful_driver(following, config) == IDLE
