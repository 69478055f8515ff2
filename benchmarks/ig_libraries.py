"""IG libraries against this engine: the same networks, weights, states and targets, steps = 50.

    python benchmarks/ig_libraries.py [--repeats 20]

The networks are ig_throughput.py's (the 4-64-64-2 tanh MLP at N = 1 and 500, the Nature-DQN CNN
at N = 1 and 32), with the engine's weights copied into each library's framework. Each library runs
in its own process (PyTorch and TensorFlow never share a process and its thread pools) and is
timed the way ig_throughput.py times the engine: the median of at least one second of calls,
after a warm-up call. A library this Python cannot import is listed as not installed. They are not
in requirements-dev.txt; to install them beside the project's packages:

    python -m venv --system-site-packages /tmp/ig-libraries
    /tmp/ig-libraries/bin/pip install --index-url https://download.pytorch.org/whl/cpu torch
    /tmp/ig-libraries/bin/pip install captum matplotlib tf-explain opencv-python-headless
    /tmp/ig-libraries/bin/python benchmarks/ig_libraries.py

Columns: "vs engine" is the library's time over the engine's (TensorFlow, its defaults for the model,
Gauss-Legendre, refine off); "max error" is the largest difference from the same Gauss-Legendre
rule computed in float64 on a float64 twin of the network, relative to its largest attribution;
"gap %" is the median completeness gap |sum(attributions) - (F(x) - F(0))| / |F(x) - F(0)| over the
states, with F in float64.

  * Captum (PyTorch), IntegratedGradients.attribute at its defaults (Gauss-Legendre), all rows in one
    batch, without its convergence delta (computing it costs Captum an extra forward pass, and the
    engine reports it in every call). Also its "riemann_trapezoid", whose weights add up to
    (n - 1) / n, not 1.
  * tf-explain (TensorFlow), IntegratedGradients' two compute steps (``generate_interpolations`` and
    ``get_integrated_gradients``); ``explain`` itself only adds a grey-scale image of their result.
    It returns the mean gradient over n points from 0 to 1 without the (x - x') factor, so
    this script multiplies by x (the baseline is 0), outside the timing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

STEPS = 50
CASES = (("mlp_4_64_64_2", 1), ("mlp_4_64_64_2", 500), ("nature_dqn_cnn", 1), ("nature_dqn_cnn", 32))
LIBRARIES = {  # worker name -> (library, quadrature rule)
    "captum": ("Captum (PyTorch)", "gausslegendre"),
    "captum-trapezoid": ("Captum (PyTorch)", "riemann_trapezoid"),
    "tf-explain": ("tf-explain", "n points, 0 to 1"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--worker", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.case, args.repeats)
    else:
        compare(args.repeats)


def compare(repeats: int) -> None:
    """Time the engine on each case in this process, each library in a child process, and print one table."""
    import platform

    import keras

    from attribution import integrated_gradients
    from attribution.engine import backend

    from ig_throughput import mlp, nature_cnn
    from timing import median_ms

    keras.utils.set_random_seed(0)
    models = {}  # name -> (the network, the function that builds it)
    for build in (mlp, nature_cnn):
        model = build()
        models[model.name] = model, build
    print(f"IG libraries against the engine, steps = {STEPS}, device {backend.device_name()}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"{'library':<20}{'rule':<20}{'model':<16}{'N':>5}{'ms / call':>11}{'states / s':>12}"
          f"{'vs engine':>11}{'max error':>11}{'gap %':>9}")
    versions = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, n in CASES:
            model, build = models[name]
            states = np.random.default_rng(0).normal(size=(n, *model.input_shape[1:])).astype(np.float32)
            targets = np.zeros(n, dtype=np.int64)
            truth, change = float64_integrated_gradients(model, build, states, targets)
            explain = lambda: integrated_gradients(model, states, target=targets, steps=STEPS, refine=False)  # noqa: E731
            engine_ms = median_ms(explain, repeats if n * states[0].size < 1e6 else max(3, repeats // 4))
            case = os.path.join(folder, f"{name}_{n}.npz")
            np.savez(case, name=name, states=states, targets=targets,
                     **{f"w{i}": w for i, w in enumerate(model.get_weights())})

            def row(library, rule, ms, attributions):
                error = np.abs(attributions - truth).max() / np.abs(truth).max()
                gap = np.abs(attributions.reshape(n, -1).sum(1, dtype=np.float64) - change) / np.abs(change)
                return (f"{library:<20}{rule:<20}{name:<16}{n:>5}{ms:>11.2f}{n / ms * 1e3:>12,.0f}"
                        f"{ms / engine_ms:>10.1f}x{error:>11.1e}{100 * np.median(gap):>9.3f}")

            print(row(f"engine, {backend.BACKEND}", "gausslegendre", engine_ms, explain().attributions))
            for worker, (library, rule) in LIBRARIES.items():
                found = _run_child(worker, case, repeats)
                if "error" in found:
                    print(f"{library:<20}{rule:<20}{name:<16}{n:>5}  {found['error']}")
                    continue
                versions[library] = found["version"]
                print(row(library, rule, found["ms"], np.load(found["attributions"])))
    print("versions: " + ", ".join(f"{library} {version}" for library, version in versions.items()))


def float64_integrated_gradients(model, build, states, targets):
    """The reference: Gauss-Legendre IG from a zero baseline in float64, on a float64 twin of ``model``
    (``build()`` under a float64 dtype policy), one state at a time; -> attributions (N, *obs) and
    F(x)[t] - F(0)[t] (N,)."""
    import keras

    from attribution.engine.quadrature import quadrature_rule

    from ig_throughput import reference_gradient

    keras.config.set_dtype_policy("float64")
    try:
        twin = build()
    finally:
        keras.config.set_dtype_policy("float32")
    twin.set_weights(model.get_weights())
    gradient, (alphas, weights) = reference_gradient(twin), quadrature_rule("gausslegendre", STEPS)
    attributions = np.empty(states.shape, np.float64)
    for i, (state, target) in enumerate(zip(states.astype(np.float64), targets, strict=True)):
        rows = alphas.reshape(-1, *[1] * state.ndim) * state
        attributions[i] = np.tensordot(weights, gradient(rows, np.full(STEPS, target)), axes=1) * state
    ends = np.asarray(twin(np.concatenate([states, np.zeros_like(states)]).astype(np.float64)))
    change = np.take_along_axis(ends[:len(states)] - ends[len(states):], targets[:, None], axis=1)[:, 0]
    return attributions, change


def _run_child(worker: str, case: str, repeats: int) -> dict:
    """Run this script as ``--worker`` on one case; -> its JSON line, or {"error": why it did not run}."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", worker, "--case", case, "--repeats", str(repeats)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(lines[-1])


# ---- workers: one library, one case; print {"ms", "attributions" (a .npy path), "version"} ----

def run_worker(worker: str, case: str, repeats: int) -> None:
    data = np.load(case)
    weights = [data[f"w{i}"] for i in range(sum(key.startswith("w") for key in data.files))]
    name, states, targets = str(data["name"]), data["states"], data["targets"]
    try:
        run, finish, version = (_captum if worker.startswith("captum") else _tf_explain)(
            worker, name, weights, states, targets
        )
    except ImportError as error:
        print(json.dumps({"error": f"not installed: {error.name or error}"}))
        return
    from timing import median_ms

    ms = median_ms(run, repeats if states.size < 1e6 else max(3, repeats // 4))
    path = case.replace(".npz", f"_{worker}.npy")
    np.save(path, finish(run()))
    print(json.dumps({"ms": ms, "attributions": path, "version": version}))


def _captum(worker, name, weights, states, targets):
    import captum
    import torch
    from captum.attr import IntegratedGradients

    network = _torch_network(name, weights).eval()
    # PyTorch convolutions take channels first: the states are transposed once, outside the timing
    images = name.startswith("nature")
    inputs = torch.from_numpy(np.ascontiguousarray(states.transpose(0, 3, 1, 2) if images else states))
    target = torch.from_numpy(targets)
    method = "riemann_trapezoid" if worker.endswith("trapezoid") else "gausslegendre"
    explainer = IntegratedGradients(network)

    run = lambda: explainer.attribute(inputs, target=target, n_steps=STEPS, method=method)  # noqa: E731
    finish = lambda found: found.detach().numpy().transpose(0, 2, 3, 1) if images else found.detach().numpy()  # noqa: E731
    return run, finish, f"{captum.__version__} (torch {torch.__version__}, {torch.get_num_threads()} threads)"


def _torch_network(name, weights):
    """The Keras network's twin in PyTorch, with the same weights (channels first, flattened as Keras does)."""
    import torch

    def linear(kernel, bias):
        layer = torch.nn.Linear(*kernel.shape)
        layer.weight.data, layer.bias.data = torch.from_numpy(kernel.T.copy()), torch.from_numpy(bias)
        return layer

    if name.startswith("mlp"):
        return torch.nn.Sequential(linear(*weights[0:2]), torch.nn.Tanh(), linear(*weights[2:4]), torch.nn.Tanh(),
                                   linear(*weights[4:6]))

    def conv(kernel, bias, stride):
        layer = torch.nn.Conv2d(kernel.shape[2], kernel.shape[3], kernel.shape[:2], stride)
        layer.weight.data = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
        layer.bias.data = torch.from_numpy(bias)
        return layer

    class ChannelsLast(torch.nn.Module):  # Keras flattens (h, w, c); PyTorch's feature maps are (c, h, w)
        def forward(self, x):
            return x.permute(0, 2, 3, 1).flatten(1)

    return torch.nn.Sequential(conv(*weights[0:2], 4), torch.nn.ReLU(), conv(*weights[2:4], 2), torch.nn.ReLU(),
                               conv(*weights[4:6], 1), torch.nn.ReLU(), ChannelsLast(),
                               linear(*weights[6:8]), torch.nn.ReLU(), linear(*weights[8:10]))


def _tf_explain(worker, name, weights, states, targets):
    import tf_explain
    from tf_explain.core.integrated_gradients import IntegratedGradients

    from ig_throughput import mlp, nature_cnn

    model = mlp() if name.startswith("mlp") else nature_cnn()
    model.set_weights(weights)
    if np.any(targets != targets[0]):
        raise ValueError("tf-explain explains one class for all states")

    def run():
        paths = IntegratedGradients.generate_interpolations(states, STEPS)
        return IntegratedGradients.get_integrated_gradients(paths, model, int(targets[0]), STEPS).numpy()

    return run, lambda mean_gradient: mean_gradient * states, tf_explain.__version__  # x - x' = x


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
