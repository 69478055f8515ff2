"""Recording, saving, loading and replaying episodes."""

import io
import os

import keras
import numpy as np
import pytest

from attribution.rl.episodes import Episode, EpisodeError, Frames, load_episode, save_episode
from attribution.rl.policies import policy_from_model
from attribution.rl.rollout import record_episode, replay_observations


def random_policy(env_id, n_in, n_out, head="logits", seed=0):
    keras.utils.set_random_seed(seed)
    obs = keras.Input((n_in,))
    hidden = keras.layers.Dense(16, activation="tanh")(obs)
    return policy_from_model(keras.Model(obs, {head: keras.layers.Dense(n_out)(hidden),
                                               "value": keras.layers.Dense(1)(hidden)}), env_id)


@pytest.fixture(scope="module")
def cartpole():
    return random_policy("CartPole-v1", 4, 2)


@pytest.fixture(scope="module")
def episode(cartpole):
    return record_episode(cartpole, seed=3)


def test_an_episode_records_every_step(episode, cartpole):
    t = len(episode)
    assert t > 5 and (episode.terminated or episode.truncated)
    assert episode.observations.shape == (t, 4) and episode.observations.dtype == np.float32
    assert episode.actions.shape == (t,) and set(episode.actions) <= {0, 1}
    assert episode.rewards.shape == (t,) and episode.total_return == float(t)  # CartPole pays 1 a step
    assert episode.policy_outputs.shape == (t, 2)
    np.testing.assert_allclose(
        episode.policy_outputs, cartpole.heads(episode.observations)["logits"], rtol=1e-5, atol=1e-6
    )
    assert (episode.actions == episode.policy_outputs.argmax(axis=1)).all()  # greedy
    assert len(episode.frames) == t and episode.frames[0].shape == (400, 600, 3)
    assert episode.env_id == "CartPole-v1" and episode.seed == 3 and episode.greedy


def test_replaying_the_seed_and_actions_reproduces_the_observations(episode):
    np.testing.assert_array_equal(replay_observations(episode), episode.observations)


@pytest.mark.parametrize(
    "env_id, n_in, n_out, head", [("LunarLander-v3", 8, 4, "logits"), ("Pendulum-v1", 3, 1, "mean")]
)
def test_replay_is_exact_for_box2d_and_continuous_actions(env_id, n_in, n_out, head):
    recorded = record_episode(
        random_policy(env_id, n_in, n_out, head), seed=11, greedy=False, render=False, max_steps=150
    )
    assert len(recorded.frames) == 0
    np.testing.assert_array_equal(replay_observations(recorded), recorded.observations)


def test_sampled_actions_are_reproducible_from_the_seed(cartpole):
    first = record_episode(cartpole, seed=5, greedy=False, render=False)
    again = record_episode(cartpole, seed=5, greedy=False, render=False)
    np.testing.assert_array_equal(first.actions, again.actions)
    assert not first.greedy


def test_save_then_load_gives_identical_arrays(episode, tmp_path):
    episode.attributions = np.random.default_rng(0).normal(size=episode.observations.shape).astype(np.float32)
    episode.settings = {"explain": "action probability", "steps": 64}
    path = save_episode(episode, tmp_path / "run.npz")
    loaded = load_episode(path)
    for name in ("observations", "actions", "rewards", "policy_outputs", "attributions"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(episode, name), err_msg=name)
        assert getattr(loaded, name).dtype == getattr(episode, name).dtype
    assert loaded.frames.encoded == episode.frames.encoded
    np.testing.assert_array_equal(loaded.frames[7], episode.frames[7])
    for name in ("env_id", "seed", "policy", "greedy", "terminated", "truncated", "created", "settings"):
        assert getattr(loaded, name) == getattr(episode, name), name
    with open(path, "rb") as file:  # an upload arrives as a file object
        assert len(load_episode(io.BytesIO(file.read()))) == len(episode)


def test_a_long_lunar_lander_episode_with_frames_stays_small():
    """Measured per frame on real LunarLander frames, scaled to the 1,000-step limit."""
    recorded = record_episode(random_policy("LunarLander-v3", 8, 4), seed=1, greedy=False, max_steps=200)
    per_step = recorded.frames.nbytes / len(recorded) + sum(
        a.nbytes for a in (recorded.observations, recorded.actions, recorded.rewards, recorded.policy_outputs)
    ) / len(recorded)
    assert per_step * 1000 < 30e6, f"{per_step * 1000 / 1e6:.1f} MB for 1,000 steps"


# ---- damaged and foreign files ----

def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_damaged_and_foreign_files_get_a_clear_error(episode, tmp_path):
    good = save_episode(episode, tmp_path / "good.npz").read_bytes()
    cases = {
        "random.npz": (os.urandom(2000), "is not an episode file"),
        "truncated.npz": (good[: len(good) // 2], "is not an episode file"),
        "foreign.npz": (npz_bytes(x=np.zeros(3)), "it lacks observations, actions"),
    }
    with np.load(io.BytesIO(good)) as data:
        arrays = {key: data[key] for key in data.files}
    pickled = np.empty(len(arrays["observations"]), dtype=object)
    pickled[:] = [{"a": 1}] * len(pickled)
    cases["pickled.npz"] = (npz_bytes(**{**arrays, "observations": pickled}),
                            "'observations.npy' holds Python objects, which are never unpickled")
    cases["short_rewards.npz"] = (
        npz_bytes(**{**arrays, "rewards": arrays["rewards"][:-1]}),
        r"rewards has shape \(\d+,\)",
    )
    cases["other_format.npz"] = (npz_bytes(**{**arrays, "metadata": np.frombuffer(b'{"format": "x"}', np.uint8)}),
                                 "names no 'rl-attribution episode' format")
    cases["bad_frames.npz"] = (npz_bytes(**{**arrays, "frame_lengths": arrays["frame_lengths"] + 1}), "damaged frames")
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(EpisodeError, match=message):
            load_episode(tmp_path / name)


def test_an_interrupted_save_leaves_the_old_file(episode, tmp_path, monkeypatch):
    path = save_episode(episode, tmp_path / "run.npz")
    before = path.read_bytes()

    def crash(*args):
        raise OSError("disk pulled out")

    monkeypatch.setattr(os, "replace", crash)
    other = Episode(**{**episode.__dict__, "seed": 99})
    with pytest.raises(OSError, match="disk pulled out"):
        save_episode(other, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]  # no temporary file left


def test_frames_decode_to_what_was_stored():
    frames = Frames()
    picture = np.random.default_rng(0).integers(0, 255, size=(20, 30, 3), dtype=np.uint8)
    frames.append(picture)
    np.testing.assert_array_equal(frames[0], picture)
    assert len(frames) == 1 and frames.nbytes > 0


# ---- the one episode loop ----

def test_the_stepper_makes_its_environment_with_make_env_and_closes_it(monkeypatch):
    from attribution.rl import rollout

    made = []

    def make_env(env_id, render_mode=None):
        from attribution.rl.environments import make_env as real

        made.append((env_id, render_mode))
        return real(env_id, render_mode)

    monkeypatch.setattr(rollout, "make_env", make_env)
    with rollout.EpisodeStepper("CartPole-v1", seed=3, record_frames=True) as run:
        while run.t < 5:
            run.step(0, policy_output=np.zeros(2, np.float32))
        episode = run.episode("test", greedy=True)
    assert made == [("CartPole-v1", "rgb_array")] and run.closed
    assert len(episode) == 5 and len(episode.frames) == 5 and episode.observations.shape == (5, 4)
    assert episode.policy_outputs.shape == (5, 2) and episode.total_return == 5.0


def test_the_stepper_refuses_to_step_past_the_end_and_starts_anew_on_reset():
    from attribution.rl.rollout import EpisodeStepper

    run = EpisodeStepper("CartPole-v1", seed=0)
    while not run.done:
        run.step(0)
    with pytest.raises(ValueError, match=r"the episode ended after \d+ steps; reset it"):
        run.step(0)
    first = run.t
    run.reset(1)
    assert run.t == 0 and not run.done and run.total_return == 0.0 and first > 0
    run.close()
    run.close()  # closing twice is harmless
    assert run.closed


def test_greedy_rollouts_count_whole_episodes_and_steps(cartpole):
    from attribution.rl.rollout import greedy_rollouts

    returns, states = greedy_rollouts(cartpole, "CartPole-v1", episodes=3, first_seed=7)
    assert len(returns) == 3 and len(states) == returns.sum()  # CartPole pays 1 per step
    assert greedy_rollouts(cartpole, "CartPole-v1", max_steps=50)[1].shape == (50, 4)
    np.testing.assert_array_equal(record_episode(cartpole, seed=7, render=False).observations,
                                  states[:int(returns[0])])


def test_the_stepper_renders_each_state_once():
    from attribution.rl.rollout import EpisodeStepper

    with EpisodeStepper("CartPole-v1", seed=0, render=True) as run:
        renders = []
        real_render = run.env.render
        run.env.render = lambda: renders.append(run.t) or real_render()
        first = run.frame()
        assert run.frame() is first and renders == [0]  # a redraw without a step renders nothing
        run.step(1)
        assert run.frame() is not first and renders == [0, 1]


def test_playing_ahead_then_rewinding_lands_on_the_same_state(cartpole):
    from attribution.rl.rollout import EpisodeStepper, play_ahead

    with EpisodeStepper("CartPole-v1", seed=4, render=True) as run:
        frames = play_ahead(run, cartpole, 8)
        assert len(frames) == run.t == 8 and frames[0].shape == (400, 600, 3) and frames[0].dtype == np.uint8
        observations, actions, total = np.array(run.observations), list(run.actions), run.total_return
        run.rewind(5)  # back to the state before step 5, from the seed and the first 5 actions
        assert run.t == 5 and run.total_return == sum(run.rewards) == 5.0 and not run.done
        np.testing.assert_array_equal(run.observation, observations[5])
        np.testing.assert_array_equal(run.frame(), frames[5])
        assert play_ahead(run, cartpole, 3) and run.actions == actions and run.total_return == total
        with pytest.raises(ValueError, match="rewind needs a step from 0 to 8; received 9"):
            run.rewind(9)


def test_playing_ahead_stops_at_the_end_of_the_episode(cartpole):
    from attribution.rl.rollout import EpisodeStepper, play_ahead

    with EpisodeStepper("CartPole-v1", seed=0, render=True) as run:
        run.env.unwrapped.state[2] = 0.2  # a pole far over: the episode ends within a few steps
        run.observe(np.array(run.env.unwrapped.state, np.float32))
        frames = play_ahead(run, cartpole, 500)
        assert run.done and len(frames) == run.t < 500
