"""The code is layered one way down, and the files say so: engine <- rl <- analysis <- batch <-
presentation, pages on top; training is for the command line only. Checked on the source, import by import."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "attribution"
LAYERS = ("engine", "rl", "analysis", "batch", "presentation")  # each may import those before it
PUBLIC_PATHS = {"attribution/__init__.py", "attribution/policies.py", "attribution/episodes.py"}  # re-exports


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (function bodies included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def python_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def test_every_module_of_the_package_lives_in_a_layer():
    loose = {str(path.relative_to(ROOT)) for path in PACKAGE.glob("*.py")}
    assert loose == PUBLIC_PATHS
    assert {path.name for path in PACKAGE.iterdir() if path.is_dir() and path.name != "__pycache__"} == \
        {*LAYERS, "training"}


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_the_layers_below_it(layer):
    above = {f"attribution.{name}" for name in LAYERS[LAYERS.index(layer) + 1:]} | {"attribution.training"}
    for path in python_files(PACKAGE / layer):
        wrong = {name for name in imports(path) if name.split(".")[0] == "pages" or
                 any(name == a or name.startswith(a + ".") for a in above)}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}, from a layer above it"


def test_the_engine_knows_keras_and_numpy_only():
    for path in python_files(PACKAGE / "engine"):
        foreign = {name for name in imports(path) if name.split(".")[0] in ("gymnasium", "plotly", "PIL", "streamlit")}
        assert not foreign, f"{path.relative_to(ROOT)} imports {sorted(foreign)}"


def test_nothing_in_the_backend_imports_streamlit():
    for path in python_files(PACKAGE):
        assert not {n for n in imports(path) if n.split(".")[0] == "streamlit"}, path.relative_to(ROOT)


def test_the_app_never_imports_training_code():
    for path in [ROOT / "app.py", *python_files(ROOT / "pages"), *python_files(PACKAGE)]:
        if "training" in path.parts:
            continue
        assert not {n for n in imports(path) if n.startswith("attribution.training")}, path.relative_to(ROOT)


def test_nothing_outside_the_engine_imports_a_private_module():
    outside = [ROOT / "app.py", *python_files(ROOT / "pages"), *python_files(ROOT / "benchmarks"),
               *[p for p in python_files(PACKAGE) if "engine" not in p.parts]]
    for path in outside:
        private = {n for n in imports(path) if n.startswith("attribution") and any(
            part.startswith("_") and part != "__init__" for part in n.split("."))}
        assert not private, f"{path.relative_to(ROOT)} imports {sorted(private)}"


def test_importing_the_engine_loads_no_gymnasium_plotly_or_streamlit():
    code = ("import sys, attribution, attribution.engine.ig, attribution.engine.outputs; "
            "print(sorted(m for m in ('gymnasium', 'plotly', 'streamlit') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_public_names_keep_working():
    import attribution
    from attribution import explain, integrated_gradients  # noqa: F401
    from attribution.episodes import record_episode  # noqa: F401
    from attribution.policies import load_policy, load_policy_file  # noqa: F401

    assert explain.action_probabilities is attribution.engine.outputs.action_probabilities
    env = attribution.make_env("CartPole-v1", render_mode="rgb_array")
    env.reset(seed=0)
    assert env.render().shape == (400, 600, 3)
    env.close()
