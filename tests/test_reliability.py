"""Reliability and safety: hostile files through the pages, bad values, saving, threads, configuration.
(Eight browser sessions at once: tests/browser/test_concurrency.py.)"""

import io
import re
import threading
import tomllib
import zipfile
from pathlib import Path

import gymnasium as gym
import keras
import numpy as np
import pytest

from attribution import explain, integrated_gradients
from attribution.episodes import record_episode, save_episode
from attribution.rl.library import EpisodeLibrary
from attribution.rl.policies import load_policy

from test_app import button, metric, record, run_app, sidebar_select

ROOT = Path(__file__).resolve().parents[1]


def keras_bytes(model, tmp_path, name="model.keras") -> bytes:
    model.save(tmp_path / name)
    return (tmp_path / name).read_bytes()


def policy_model(n_in=4, n_out=2):
    obs = keras.Input((n_in,))
    return keras.Model(obs, keras.layers.Dense(n_out)(keras.layers.Dense(8, activation="tanh")(obs)))


def upload_policy(at, name: str, data: bytes):
    uploader = next(u for u in at.get("file_uploader") if u.label == "Upload a policy")
    uploader.set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, at.exception
    return at


# ---- hostile and broken uploads, through the page ----

def lambda_archive(tmp_path) -> tuple[bytes, Path]:
    marker = tmp_path / "lambda-ran.txt"
    marker_name = str(marker)
    obs = keras.Input((4,))
    touched = keras.layers.Lambda(lambda x: x + 0 * len(open(marker_name, "w").name))(obs)
    data = keras_bytes(keras.Model(obs, keras.layers.Dense(2)(touched)), tmp_path, "evil.keras")
    marker.unlink()  # building the model ran the lambda here, on purpose
    return data, marker


def truncated_archive(tmp_path) -> bytes:
    data = keras_bytes(policy_model(), tmp_path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("config.json", data[:40])
    return buffer.getvalue()


@pytest.mark.parametrize("case, message", [
    ("lambda", "carries code"),
    ("not keras", "is not a Keras archive"),
    ("truncated", "could not be read as a Keras model"),
    ("wrong shapes", r"takes inputs of shape \(batch, 3\)"),
])
def test_a_hostile_or_broken_policy_is_refused_in_the_page(tmp_path, case, message):
    at = run_app()
    data, marker = {
        "lambda": lambda: lambda_archive(tmp_path),
        "not keras": lambda: (b"MZ\x90\x00 an executable, say", None),
        "truncated": lambda: (truncated_archive(tmp_path), None),
        "wrong shapes": lambda: (keras_bytes(policy_model(n_in=3), tmp_path), None),
    }[case]()
    choices = sidebar_select(at, "Environment").options
    upload_policy(at, "upload.keras", data)
    assert re.search(message, at.sidebar.error[0].value) and "upload.keras was not loaded" in at.sidebar.error[0].value
    assert marker is None or not marker.exists()  # the Lambda never ran
    assert sidebar_select(at, "Environment").options == choices
    button(at, "Step").click().run()  # the session goes on
    assert not at.exception and metric(at, "Step") == "1"


def test_an_environment_that_is_not_installed_gets_a_message(tmp_path):
    gym.register("NeedsAMissingPackage-v0", entry_point="no_such_package.envs:Env")
    try:
        at = run_app()
        sidebar_select(at, "For environment").set_value("NeedsAMissingPackage-v0").run()
        upload_policy(at, "mine.keras", keras_bytes(policy_model(), tmp_path))
        assert "environment 'NeedsAMissingPackage-v0' could not be created" in at.sidebar.error[0].value
    finally:
        del gym.registry["NeedsAMissingPackage-v0"]


def test_an_episode_file_with_wrong_arrays_changes_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTRIBUTION_RUNS", str(tmp_path / "runs"))
    at = run_app("pages/replay.py")
    record(at)
    button(at, "Save to library").click().run()
    kept = sorted((tmp_path / "runs").iterdir())
    episode = EpisodeLibrary(tmp_path / "runs").load(kept[0].name)
    episode.rewards = episode.rewards[:-3]  # arrays that disagree on the episode's length
    save_episode(episode, tmp_path / "bad.npz")
    uploader = next(u for u in at.get("file_uploader") if u.label.startswith("Open an episode file"))
    uploader.set_value(("bad.npz", (tmp_path / "bad.npz").read_bytes(), "application/octet-stream")).run()
    assert not at.exception
    assert "bad.npz was not opened" in at.error[0].value and "inconsistent arrays" in at.error[0].value
    assert sorted((tmp_path / "runs").iterdir()) == kept


# ---- bad values ----

@pytest.mark.parametrize("steps", [0, 100_000])
def test_absurd_steps_are_refused_by_the_widget(steps):
    at = run_app()
    next(n for n in at.sidebar.number_input if n.label == "Steps").set_value(32).run()
    next(n for n in at.sidebar.number_input if n.label == "Steps").set_value(steps).run()
    assert not at.exception  # the widget (1 to MAX_STEPS) refuses it and goes back to its default
    assert next(n for n in at.sidebar.number_input if n.label == "Steps").value == 64
    assert "gap" in at.info[0].value


# ---- saving ----

def test_two_sessions_saving_at_once_both_keep_their_files(tmp_path):
    episode = record_episode(load_policy("CartPole-v1"), seed=1, max_steps=30)
    library = EpisodeLibrary(tmp_path)
    names, errors = [], []

    def save():
        try:
            names.append(library.save(episode))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=save) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(names)) == 8
    assert sorted(e.name for e in library.entries()) == sorted(names)
    for name in names:
        np.testing.assert_array_equal(library.load(name).observations, episode.observations)


def test_an_interrupted_library_save_leaves_the_library_as_it_was(tmp_path, monkeypatch):
    episode = record_episode(load_policy("CartPole-v1"), seed=1, max_steps=10)
    library = EpisodeLibrary(tmp_path)
    first = library.save(episode)

    def crash(*args):
        raise KeyboardInterrupt("the power went out")

    monkeypatch.setattr("attribution.rl.files.os.replace", crash)
    with pytest.raises(KeyboardInterrupt):
        library.save(episode)
    assert sorted(p.name for p in tmp_path.iterdir()) == [first]  # no half file, no temporary left


# ---- shared models across threads ----

def test_a_shared_policy_serves_many_threads_at_once():
    policy = load_policy("LunarLander-v3")
    model = explain.action_probabilities(policy.model)
    states = policy.info.reference_states[:64]
    expected = integrated_gradients(model, states).attributions
    expected_actions = [policy.act(s) for s in states]
    found, errors = {}, []

    def work(k):
        try:
            rows = slice(8 * k, 8 * k + 8)
            found[k] = (integrated_gradients(model, states[rows]).attributions, [policy.act(s) for s in states[rows]])
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for k in range(8):
        np.testing.assert_allclose(found[k][0], expected[8 * k:8 * k + 8], rtol=1e-5, atol=1e-6)
        assert found[k][1] == expected_actions[8 * k:8 * k + 8]


def app_sources() -> list[Path]:
    """Every Python file of the app: the backend's layers, the pages and the entry point."""
    sources = [p for folder in ("attribution", "pages") for p in (ROOT / folder).rglob("*.py")] + [ROOT / "app.py"]
    assert len(sources) > 30 and ROOT / "attribution" / "rl" / "episodes.py" in sources
    return sources


def test_no_code_calls_predict_on_shared_models():
    sources = app_sources()
    assert not [p.name for p in sources if ".predict(" in p.read_text()]


# ---- configuration ----

def test_the_server_configuration_is_safe():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["enableXsrfProtection"] is True
    assert 0 < config["server"]["maxUploadSize"] <= 200
    assert config["server"]["address"] == "localhost"


def test_no_pickle_on_any_path_a_user_can_feed():
    sources = app_sources()
    for path in sources:
        text = path.read_text()
        if path.name == "torch_state.py":  # PyTorch files are pickles: an Unpickler that allows a state_dict only
            assert "class _Unpickler(pickle.Unpickler)" in text and "def find_class" in text
            assert not re.search(r"pickle\.(loads?|Unpickler\(\w)", text.replace("pickle.Unpickler):", ""))
            continue
        assert not re.search(r"^\s*(import|from)\s+(c?pickle|joblib|dill)\b", text, re.M), path.name
        assert "allow_pickle=True" not in text and "safe_mode=False" not in text, path.name
        for call in re.findall(r"np\.load\([^)]*\)", text):
            assert "allow_pickle=False" in call, (path.name, call)


def test_the_readme_says_how_to_expose_the_dashboard_safely():
    readme = (ROOT / "README.md").read_text()
    assert "## Sharing the dashboard on a network" in readme and "localhost" in readme
