"""Small files that would inflate to gigabytes are refused from their zip directory or their .npy
headers, fast and without the memory, by the one module every archive reader goes through."""

import ast
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from hostile_archives import bomb, npy_header, understate_size

from attribution.rl.archives import EPISODE_LIMITS, ArchiveError, ArchiveLimits, open_archive
from attribution.rl.episodes import EpisodeError, load_episode, save_episode
from attribution.rl.policies import load_policy, load_policy_file
from attribution.rl.rollout import record_episode

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("hostile_archives.py")
GIB = 2**30


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A good episode and a good policy, and the hostile files made from them."""
    folder = tmp_path_factory.mktemp("hostile")
    good_episode = save_episode(record_episode(load_policy("CartPole-v1"), seed=0, render=False, max_steps=20),
                                folder / "good.npz")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(folder / "good.keras")
    episode_bytes, policy_bytes = good_episode.read_bytes(), (folder / "good.keras").read_bytes()
    found = {"good.npz": good_episode, "good.keras": folder / "good.keras"}
    # an episode whose observations declare 2.1 GiB, in a file of about 2 MB
    n_rows = int(2.1 * GIB) // 16
    bomb(episode_bytes, folder / "observations_bomb.npz", "observations.npy", n_rows * 16 + 128,
         npy_header((n_rows, 4)))
    # a policy whose weights inflate to 1.5 GB of zeros
    bomb(policy_bytes, folder / "weights_bomb.keras", "model.weights.h5", int(1.5e9))
    # members whose headers say they inflate to 1,000 bytes, and which inflate to 1.5 GB
    for name, good, member in (("lying.npz", episode_bytes, "metadata.npy"), ("lying.keras", policy_bytes,
                                                                              "model.weights.h5")):
        bomb(good, folder / name, member, int(1.5e9), npy_header((500,), "|u1") if member.endswith(".npy") else b"")
        understate_size(folder / name, member, 1000)
        found[name] = folder / name
    found["observations_bomb.npz"] = folder / "observations_bomb.npz"
    found["weights_bomb.keras"] = folder / "weights_bomb.keras"
    return found


def load_in_a_child(kind: str, path: Path, warm_up: Path) -> dict:
    done = subprocess.run([sys.executable, str(WORKER), kind, str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin",
                                            "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}", "WARM_UP": str(warm_up)})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name, kind, message", [
    ("observations_bomb.npz", "episode",
     r"'observations.npy' \(2,150.4 MB declared, 2.\d MB compressed\).*at most 1,024.0 MB"),
    ("weights_bomb.keras", "policy",
     r"'model.weights.h5' \(1,430.5 MB declared, 1.\d MB compressed\).*at most 512.0 MB"),
    ("lying.npz", "episode", r"'metadata.npy' is damaged or lies about its size"),
    ("lying.keras", "policy", r"'model.weights.h5' is damaged or lies about its size"),
])
def test_a_bomb_is_refused_in_seconds_without_the_memory(files, name, kind, message):
    assert files[name].stat().st_size < 3 * 2**20  # each is a small upload
    found = load_in_a_child(kind, files[name], files["good.npz" if kind == "episode" else "good.keras"])
    assert found["error"] is not None and found["error"] != "MemoryError", found
    assert re.search(message, found["error"]), found["error"]
    assert found["seconds"] < 3 and found["extra_mb"] < 200, found


def test_the_good_files_still_load(files):
    assert len(load_episode(files["good.npz"])) == 20
    assert load_policy_file(files["good.keras"], "CartPole-v1").act(np.zeros(4)) in (0, 1)


def zip_of(members: dict, compression=zipfile.ZIP_STORED) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    buffer.seek(0)
    return buffer


def test_the_directory_limits_name_the_member_and_the_limit():
    limits = ArchiveLimits("a test file", max_members=2, max_total_bytes=3 * 2**20, max_ratio=10)
    with pytest.raises(ArchiveError, match=r"holds 3 members; a test file holds at most 2"):
        open_archive(zip_of({"a": b"", "b": b"", "c": b""}), limits, "many.zip")
    with pytest.raises(ArchiveError, match=r"'b' \(2.0 MB declared, 2.0 MB compressed\).*declare 4.0 MB or more"):
        open_archive(zip_of({"a": bytes(2 * 2**20), "b": bytes(2 * 2**20)}), limits, "big.zip")
    with pytest.raises(ArchiveError, match=r"member 'a' declares 2.0 MB from 2,0\d\d bytes compressed, a ratio of"):
        open_archive(zip_of({"a": bytes(2 * 2**20)}, zipfile.ZIP_DEFLATED), limits, "ratio.zip")
    open_archive(zip_of({"a": bytes(2**19)}, zipfile.ZIP_DEFLATED), limits, "small.zip").verify()  # under the floor


def test_npy_headers_are_checked_before_the_data():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    buffer = io.BytesIO()
    np.save(buffer, array)
    archive = open_archive(zip_of({"x.npy": buffer.getvalue(), "o.npy": npy_header((2,), "|O") + bytes(16)}),
                           EPISODE_LIMITS, "arrays.npz")
    seen = []
    np.testing.assert_array_equal(archive.read_npy("x.npy", lambda shape, dtype: seen.append((shape, dtype))), array)
    assert seen == [((3, 4), np.dtype(np.float32))]

    def refuse(shape, dtype):
        raise EpisodeError(f"refused {shape}")

    with pytest.raises(EpisodeError, match=r"refused \(3, 4\)"):
        archive.read_npy("x.npy", refuse)
    with pytest.raises(ArchiveError, match=r"'o.npy' holds Python objects, which are never unpickled"):
        archive.read_npy("o.npy", lambda shape, dtype: None)


def test_an_episode_must_fit_its_environment(files, tmp_path):
    with zipfile.ZipFile(files["good.npz"]) as good:
        members = {info.filename: good.read(info) for info in good.infolist()}
    meta = json.loads(np.load(io.BytesIO(members["metadata.npy"])).tobytes())
    for change, message in [({"length": 10**9}, r"says it is 1000000000 steps long; an episode of CartPole-v1 "
                                                r"lasts at most 500 steps"),
                            ({"env_id": "NoSuchEnv-v0"}, r"recorded in 'NoSuchEnv-v0', which is not an installed"),
                            ({"length": 19}, r"observations has shape \(20, 4\) and dtype float32; expected shape")]:
        buffer = io.BytesIO()
        np.save(buffer, np.frombuffer(json.dumps({**meta, **change}).encode(), np.uint8))
        with pytest.raises(EpisodeError, match=message):
            load_episode(zip_of({**members, "metadata.npy": buffer.getvalue()}), "changed.npz")


def test_every_reader_of_a_users_file_goes_through_the_checked_module():
    """No module of the app opens a zip or an .npz itself; the readers of users' files use open_archive."""
    readers = set()
    for path in [*ROOT.glob("attribution/**/*.py"), *ROOT.glob("pages/*.py"), ROOT / "app.py"]:
        tree = ast.parse(path.read_text())
        calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
        if path.name != "archives.py":
            assert not calls & {"zipfile.ZipFile", "np.load", "numpy.load", "ZipFile"}, path.relative_to(ROOT)
        if "open_archive" in calls:
            readers.add(str(path.relative_to(ROOT)))
    assert readers == {"attribution/rl/episodes.py", "attribution/rl/formats/keras_file.py",
                       "attribution/rl/formats/normalization.py", "attribution/rl/formats/sb3.py",
                       "attribution/rl/formats/torch_state.py"}


def test_only_stored_and_deflated_members_are_read():
    with pytest.raises(ArchiveError, match=r"'a' is compressed with method 14; a test file is stored or deflated"):
        open_archive(zip_of({"a": b"x" * 100}, zipfile.ZIP_LZMA), ArchiveLimits("a test file", 4, 2**20, 10), "l.zip")
