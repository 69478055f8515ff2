"""Run a fixed set of IG calls on whatever KERAS_BACKEND says, for the cross-backend test.

    KERAS_BACKEND=jax python tests/ig_on_backend.py MODEL_DIR OUT.npz

MODEL_DIR holds NAME.keras and NAME.npy (the states) for each model; OUT.npz receives
NAME/CASE/attributions and NAME/CASE/delta for every case in CASES.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from attribution import FeatureGroups, integrated_gradients  # noqa: E402
from attribution.engine import backend  # noqa: E402
from attribution.engine.ig import explain_paths  # noqa: E402
from attribution.engine.quadrature import quadrature_rule  # noqa: E402

CASES = {
    "default": {},
    "all": {"target": "all"},
    "trapezoid_16": {"method": "riemann_trapezoid", "steps": 16},
    "chunked": {"batch_size": 7, "target": 0},
    "baseline": {"baseline": "mean"},
    "baseline_per_state": {"baseline": "shifted states"},
}


def run_cases(model_dir: Path) -> dict:
    found = {}
    for path in sorted(model_dir.glob("*.keras")):
        model = keras.saving.load_model(path)
        states = np.load(path.with_suffix(".npy"))
        for case, kwargs in CASES.items():
            if kwargs.get("baseline") == "mean":
                kwargs = {"baseline": states.mean(axis=0)}
            elif kwargs.get("baseline") == "shifted states":
                kwargs = {"baseline": np.roll(states, 1, axis=0)}
            result = integrated_gradients(model, states, refine=False, **kwargs)  # the same arithmetic on both
            assert result.attributions.flags.writeable, "results must be ordinary, writable arrays"
            found[f"{path.stem}/{case}/attributions"] = result.attributions
            found[f"{path.stem}/{case}/delta"] = result.delta
            found[f"{path.stem}/{case}/targets"] = result.targets
        labels = np.random.default_rng(0).integers(0, 3, size=states.shape)  # one partition per state
        grouped = integrated_gradients(model, states, refine=False, attributions=False,
                                       groups=FeatureGroups(("a", "b", "c"), labels))
        found[f"{path.stem}/group_sums_on_the_device/group_sums"] = grouped.group_sums
        refined = integrated_gradients(model, states, steps=2, method="riemann_left")  # writes into its result
        assert refined.steps.max() > 2, "refinement should have raised the steps of some state"
        if keras.backend.backend() == "jax":
            check_device_call(model, states)
    return found


def check_device_call(model, states: np.ndarray) -> None:
    """The GPU probe's on-device call (arguments already on the device) gives what the engine's run gives."""
    import jax

    run = backend.compiled(model, states.shape[1:], explain_paths, True)
    alphas, weights = (array.astype(np.float32) for array in quadrature_rule("gausslegendre", 8))
    n, origin = len(states), np.zeros((1, *states.shape[1:]), np.float32)
    targets = np.zeros(n, np.int32)
    through_numpy = run(states, origin, targets, alphas, weights)
    padded = (backend._pad(states, n), origin, backend._pad(targets, n), alphas, weights)
    on_device = run.device_call(*(jax.device_put(array) for array in padded))
    assert isinstance(on_device[0], jax.Array) and len(on_device[0]) == backend.bucket(n)
    for expected, found in zip(through_numpy, on_device, strict=True):
        np.testing.assert_allclose(np.asarray(found)[:n], expected, rtol=1e-6, atol=1e-7)


if __name__ == "__main__":
    np.savez(sys.argv[2], backend=keras.backend.backend(), **run_cases(Path(sys.argv[1])))
