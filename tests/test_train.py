"""The training code behind the shipped policies: its maths, and one short real run."""

import dataclasses
import json

import numpy as np
import pytest

from attribution.rl.policies import load_policy_file
from attribution.training import ppo, train
from attribution.training.dagger_pixels import PixelDAggerConfig, _Dataset, _Player, set_cross_entropy


def test_running_mean_std_matches_numpy_over_batches():
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(1000, 3))
    stats = ppo.RunningMeanStd((3,))
    for chunk in np.array_split(data, 7):
        stats.update(chunk)
    np.testing.assert_allclose(stats.mean, data.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(stats.var, data.var(axis=0), rtol=1e-3)


def test_gae_with_lambda_one_is_the_discounted_return_minus_the_value():
    rewards = np.array([[1.0], [2.0], [3.0]], np.float32)
    values = np.array([[0.5], [0.25], [0.125]], np.float32)
    buffers = {"rewards": rewards, "values": values, "dones": np.zeros_like(rewards)}
    advantages = ppo.gae(buffers, last_values=np.array([4.0], np.float32), gamma=0.9, lam=1.0)
    returns = [1 + 0.9 * 2 + 0.81 * 3 + 0.729 * 4, 2 + 0.9 * 3 + 0.81 * 4, 3 + 0.9 * 4]
    np.testing.assert_allclose(advantages[:, 0], np.array(returns) - values[:, 0], rtol=1e-6)


def test_gae_stops_at_the_end_of_an_episode():
    buffers = {"rewards": np.ones((2, 1), np.float32), "values": np.zeros((2, 1), np.float32),
               "dones": np.array([[1.0], [0.0]], np.float32)}
    advantages = ppo.gae(buffers, last_values=np.array([100.0], np.float32), gamma=0.9, lam=0.95)
    assert advantages[0, 0] == 1.0  # nothing flows back across the episode boundary
    assert advantages[1, 0] == 1.0 + 0.9 * 100.0


def test_the_clipped_surrogate_stops_pushing_a_ratio_past_its_clip_in_the_advantages_direction():
    import tensorflow as tf

    log_prob = tf.Variable(np.log([1.0, 1.5, 1.5, 0.5]).astype(np.float32))  # ratios to the old policy's 1
    advantages = tf.constant([1.0, 1.0, -1.0, -1.0])  # already normalised: mean 0, deviation 1
    with tf.GradientTape() as tape:
        loss = ppo.clipped_surrogate_loss(log_prob, tf.zeros(4), advantages, clip=0.2)
    gradient = tape.gradient(loss, log_prob).numpy()
    # -(1/4) * (ratio * advantage) where that is the smaller term, 0 where the clipped term is
    np.testing.assert_allclose(gradient, [-0.25, 0.0, 0.375, 0.0], atol=1e-6)
    np.testing.assert_allclose(float(loss), -(1.0 + 1.2 - 1.5 - 0.8) / 4, atol=1e-6)


def test_the_set_loss_is_cross_entropy_for_one_action_zero_for_all_and_averages_its_sets():
    logits = np.random.default_rng(0).normal(size=(3, 6)).astype(np.float32)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    sets = np.array([[1 << 2, 1 << 2], [63, 63], [(1 << 2) | (1 << 3), 1 << 2]], np.uint8)
    loss = set_cross_entropy(logits, sets).numpy()
    expected = [-np.log(p[0, 2]), 0.0, -(np.log(p[2, 2] + p[2, 3]) + np.log(p[2, 2])) / 2]
    np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-6)


def test_a_short_training_run_writes_a_loadable_policy_with_its_sidecar(tmp_path):
    train.main(["CartPole-v1", "--seed", "1", "--total-steps", "512", "--eval-episodes", "2", "--out", str(tmp_path)])
    sidecar = json.loads((tmp_path / "CartPole-v1.json").read_text())
    assert sidecar["seed"] == 1 and sidecar["training_steps"] == 512 and sidecar["eval_episodes"] == 2
    assert sidecar["config"]["n_envs"] == 8 and len(sidecar["reference_states"]) > 0
    policy = load_policy_file(tmp_path / "CartPole-v1.keras", "CartPole-v1")
    assert policy.info.heads == ("logits", "value") and policy.info.eval_return_mean == sidecar["eval_return_mean"]
    assert policy.act(np.zeros(4, np.float32)) in (0, 1)


def test_a_short_pixel_training_run_writes_a_loadable_pong_policy_that_can_be_trained_on(tmp_path):
    train.main(["ALE/Pong-v5", "--total-steps", "400", "--eval-episodes", "1", "--out", str(tmp_path / "a"),
                "--set", "teacher_aim=7"])
    first = json.loads((tmp_path / "a" / "ALE_Pong-v5.json").read_text())
    train.main(["ALE/Pong-v5", "--total-steps", "200", "--eval-episodes", "1", "--out", str(tmp_path),
                "--resume", str(tmp_path / "a" / "ALE_Pong-v5.keras"),
                "--set", "learning_rate=3e-4", "teacher_horizon=5", "critic_rollouts=1", "branch_horizon=4"])
    sidecar = json.loads((tmp_path / "ALE_Pong-v5.json").read_text())
    assert sidecar["config"]["first_round"] == first["config"]["rounds"] == 10
    assert sidecar["config"]["learning_rate"] == 3e-4 and first["config"]["learning_rate"] == 1e-3
    assert sidecar["config"]["teacher_horizon"] == 5 and first["config"]["teacher_horizon"] == 4
    assert sidecar["config"]["critic_rollouts"] == 1 and first["config"]["critic_rollouts"] == 0
    assert sidecar["config"]["teacher_aim"] == first["config"]["teacher_aim"] == 7   # kept from the first run
    assert sidecar["training_minutes"] >= first["training_minutes"]
    assert sidecar["training_steps"] == 600 and sidecar["eval_episodes"] == 1 and sidecar["feature_names"] is None
    assert sidecar["training_method"] == (f"{first['training_method']}; then 200 more steps with "
                                          "learning_rate=3e-4, teacher_horizon=5, critic_rollouts=1, branch_horizon=4")
    assert len(sidecar["reference_states"]) <= 8
    policy = load_policy_file(tmp_path / "ALE_Pong-v5.keras", "ALE/Pong-v5")
    assert policy.info.heads == ("logits", "value") and policy.info.median_state.shape == (4, 84, 84)


def test_going_on_training_keeps_the_sidecars_config_but_not_its_length_and_starts_after_its_rounds():
    trained = {"total_steps": 7, "rounds": 4, "first_round": 10, "teacher_aim": 3.0, "conv": [[8, 4, 2]],
               "initial_model": "older.keras", "a_field_since_removed": 1}
    config = train.resumed_config(PixelDAggerConfig(), trained, "policy.keras")
    assert (config.teacher_aim, config.conv, config.first_round, config.initial_model) == (
        3.0, ((8, 4, 2),), 14, "policy.keras")
    assert config.total_steps == PixelDAggerConfig().total_steps
    assert config.teacher_dead_band == PixelDAggerConfig().teacher_dead_band   # not in the sidecar


def test_branches_add_the_states_other_moves_lead_to_and_leave_the_game_played_as_it_was():
    """Two players from one seed, the teacher acting: the one that branches plays the same states, and
    after them the states the other moves lead to, labelled, their returns unknown (NaN); the teachers
    allow for late switches, from the move each was told was played."""
    config = PixelDAggerConfig(teacher_horizon=2, teacher_sticky_delay=2)
    branching = _Player("ALE/Pong-v5", 0, dataclasses.replace(config, branch_horizon=4))
    plain = _Player("ALE/Pong-v5", 0, config)
    played = branching.play(branching.model.get_weights(), 300, 1.0)
    expected = plain.play(plain.model.get_weights(), 300, 1.0)
    np.testing.assert_array_equal(played["states"][:300], expected["states"])
    np.testing.assert_array_equal(played["labels"][:300], expected["labels"])
    assert len(expected["states"]) == 300 < len(played["states"]) <= 300 + 300 // 4
    assert np.isnan(played["returns"][300:]).all() and not np.isnan(played["returns"][:300]).any()
    assert (played["labels"][300:, 0] > 0).all()   # each branch has the teacher's best actions


def test_keeping_a_share_of_the_easy_states_keeps_every_critical_one_and_weighs_the_others_up():
    """Two players from one seed, the teacher acting: the one keeping a quarter of the states that are not
    critical plays the same game, keeps all its critical states and about a quarter of the rest, each
    of those weighing 4."""
    config = PixelDAggerConfig(teacher_plan_until=-1)
    sparse = _Player("ALE/Pong-v5", 0, dataclasses.replace(config, easy_keep=0.25))
    plain = _Player("ALE/Pong-v5", 0, config)
    kept = sparse.play(sparse.model.get_weights(), 600, 1.0)
    every = plain.play(plain.model.get_weights(), 600, 1.0)
    critical, kept_critical = every["labels"][:, 2] == 1, kept["labels"][:, 2] == 1
    assert kept["critical"] == every["critical"] == critical.sum() > 0
    np.testing.assert_array_equal(kept["states"][kept_critical], every["states"][critical])
    assert 0.1 < (~kept_critical).sum() / (~critical).sum() < 0.45
    np.testing.assert_array_equal(kept["weights"], np.where(kept_critical, 1.0, 4.0))
    assert np.isin(kept["returns"], every["returns"]).all() and (every["weights"] == 1).all()


def test_the_dataset_grows_when_a_round_brings_more_states_than_it_has_room_for():
    data = _Dataset(3, (2,))
    for first in (0, 2, 4):
        data.add({"states": np.full((2, 2), first, np.uint8), "labels": np.full((2, 3), first, np.uint8),
                  "returns": np.arange(first, first + 2, dtype=np.float32), "weights": np.full(2, 4.0, np.float32)})
    assert data.filled == 6 and len(data.states) >= 6
    np.testing.assert_array_equal(data.returns[:6], np.arange(6))
    np.testing.assert_array_equal(data.states[:6, 0], [0, 0, 2, 2, 4, 4])
    assert (data.weights[:6] == 4).all()


def test_a_short_driving_run_writes_a_loadable_policy_with_its_crash_rate(tmp_path):
    train.main(["highway-fast-v0", "--total-steps", "120", "--eval-episodes", "2", "--out", str(tmp_path)])
    sidecar = json.loads((tmp_path / "highway-fast-v0.json").read_text())
    assert sidecar["training_steps"] == 120 and sidecar["training_method"].startswith("DAgger")
    assert sidecar["eval_crash_rate"] in (0.0, 0.5, 1.0) and sidecar["config"]["rounds"] == 6
    policy = load_policy_file(tmp_path / "highway-fast-v0.keras", "highway-fast-v0")
    assert policy.info.heads == ("logits", "value") and policy.info.eval_crash_rate == sidecar["eval_crash_rate"]


def test_going_on_training_is_refused_for_an_environment_trained_otherwise(capsys):
    with pytest.raises(SystemExit):
        train.main(["CartPole-v1", "--resume", "CartPole-v1.keras"])
    assert "--resume works with Pong's DAgger from pixels; CartPole-v1 is trained with PPO" in capsys.readouterr().err


def test_going_on_training_a_policy_without_its_sidecar_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train.main(["ALE/Pong-v5", "--resume", str(tmp_path / "ALE_Pong-v5.keras")])
    assert f"{tmp_path / 'ALE_Pong-v5.json'} is not there" in capsys.readouterr().err


@pytest.mark.parametrize("assignment, message", [
    ("learning_rat=3e-4", "--set takes FIELD=VALUE with a field of PPOConfig"),
    ("n_envs", "received 'n_envs'"),
    ("n_envs=many", "--set n_envs expects a whole number; received 'many'"),
    ("normalize_reward=maybe", "--set normalize_reward expects true or false; received 'maybe'"),
    ("learning_rate=-3e-4", "--set learning_rate expects a number above 0; received '-3e-4'"),
    ("gamma=1.5", "--set gamma expects a number above 0 and at most 1; received '1.5'"),
    ("learning_rate=nan", "--set learning_rate expects a number above 0; received 'nan'"),
    ("n_envs=0", "--set n_envs expects a number at least 1; received '0'"),
    ("entropy_coef=inf", "--set entropy_coef expects a number at least 0; received 'inf'"),
])
def test_a_bad_config_override_is_refused_before_training(assignment, message, capsys):
    with pytest.raises(SystemExit):
        train.main(["CartPole-v1", "--set", assignment])
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--total-steps", "--eval-episodes"])
def test_a_length_below_one_is_refused_before_training(option, capsys):
    with pytest.raises(SystemExit):
        train.main(["CartPole-v1", option, "0"])
    assert f"{option} must be at least 1; received 0" in capsys.readouterr().err


def test_every_number_field_of_the_shipped_configs_has_its_range_or_takes_any_value():
    """A field named in RANGES admits its shipped value; the fields left free are the ones meant to be."""
    free = set()
    for config in train.CONFIGS.values():
        for field in dataclasses.fields(config):
            value = getattr(config, field.name)
            if type(value) in (int, float):
                if field.name in train.RANGES:
                    assert value in train.RANGES[field.name], (type(config).__name__, field.name)
                else:
                    free.add(field.name)
    assert free == {"initial_log_std", "teacher_aim"}


def test_overrides_take_the_fields_types():
    config = train.with_overrides(train.CONFIGS["CartPole-v1"], ["n_envs=4", "learning_rate=1e-4",
                                                                 "normalize_reward=true"])
    assert (config.n_envs, config.learning_rate, config.normalize_reward) == (4, 1e-4, True)


def test_a_negative_checkpoint_interval_is_refused_before_training(capsys):
    import pytest

    with pytest.raises(SystemExit):
        train.main(["CartPole-v1", "--checkpoint-every", "-5"])
    assert "--checkpoint-every must be a positive number of steps; received -5" in capsys.readouterr().err
