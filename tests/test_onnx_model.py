"""ONNX graphs, built here with onnx.helper, translated into Keras and checked against onnxruntime;
and every kind of file the translation refuses."""

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import keras
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from attribution.engine import backend
from attribution.rl.errors import PolicyError
from attribution.rl.formats import onnx_model
from attribution.rl.formats.onnx_model import check_against_onnxruntime, load_onnx, load_onnx_policy

FOREIGN = Path(__file__).parent / "data" / "foreign"


def graph_bytes(nodes, input_shape, outputs, constants=None, opset=17, input_type=TensorProto.FLOAT,
                extra_inputs=(), **model_fields) -> bytes:
    """A serialized model with one input "obs" (input_shape; None: a symbolic batch), constants as initializers."""
    graph = helper.make_graph(
        nodes, "policy", [helper.make_tensor_value_info("obs", input_type, input_shape), *extra_inputs],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
        initializer=[numpy_helper.from_array(np.asarray(value), name) for name, value in (constants or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="test",
                              producer_version="1.0", **model_fields)
    model.ir_version = 8
    return model.SerializeToString()


def weights(rng, *shape):
    """PyTorch's default initialisation: uniform in +-1/sqrt(fan_in)."""
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    return (rng.uniform(-1, 1, size=shape) / np.sqrt(fan_in)).astype(np.float32)


def translated(data, observation_shape, observations, heads=None, tolerance=1e-5):
    model, description = load_onnx(data, "policy", observation_shape, heads)
    check_against_onnxruntime(data, model, observations, tolerance)
    return model, description


def mlp(rng) -> bytes:
    """obs (batch, 4) -> Gemm, Tanh -> "pi" (batch, 2) and, with alpha, beta, an untransposed B, "v" (batch, 1)."""
    nodes = [helper.make_node("Gemm", ["obs", "w1", "b1"], ["h"], transB=1),
             helper.make_node("Tanh", ["h"], ["t"]),
             helper.make_node("Gemm", ["t", "w2", "b2"], ["pi"], alpha=1.0, beta=1.0, transB=1),
             helper.make_node("Gemm", ["t", "wv", "bv"], ["v"], alpha=0.5, beta=2.0)]
    constants = {"w1": weights(rng, 16, 4), "b1": weights(rng, 16), "w2": weights(rng, 2, 16), "b2": weights(rng, 2),
                 "wv": weights(rng, 16, 1), "bv": weights(rng, 1, 1)}
    return graph_bytes(nodes, [None, 4], ["pi", "v"], constants)


def cnn(rng) -> bytes:
    """obs (batch, 4, 84, 84) / 255 -> Conv 8x8/4, Relu, Conv 4x4/2 padded, Relu, Flatten, Gemm -> logits (batch, 6)."""
    nodes = [helper.make_node("Constant", [], ["c255"], value=numpy_helper.from_array(np.float32(255.0))),
             helper.make_node("Div", ["obs", "c255"], ["x"]),
             helper.make_node("Conv", ["x", "k1", "kb1"], ["c1"], kernel_shape=[8, 8], strides=[4, 4],
                              pads=[0, 0, 0, 0], dilations=[1, 1], group=1),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "k2", "kb2"], ["c2"], kernel_shape=[4, 4], strides=[2, 2],
                              pads=[1, 2, 0, 1]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("Flatten", ["r2"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "w", "b"], ["logits"], transB=1)]
    constants = {"k1": weights(rng, 8, 4, 8, 8), "kb1": weights(rng, 8), "k2": weights(rng, 8, 8, 4, 4),
                 "kb2": weights(rng, 8), "w": weights(rng, 6, 8 * 9 * 10), "b": weights(rng, 6)}
    return graph_bytes(nodes, ["batch", 4, 84, 84], ["logits"], constants)


def frames(rng, n=5):
    return rng.integers(0, 256, size=(n, 4, 84, 84)).astype(np.float32)


def test_an_mlp_with_two_heads_matches_onnxruntime_and_is_described(rng):
    data, observations = mlp(rng), rng.normal(size=(7, 4)).astype(np.float32) * 2
    model, description = translated(data, (4,), observations, heads=("logits", "value"))
    assert description == "ONNX, opset 17, 4 nodes: Gemm, Tanh; produced by test 1.0"
    assert list(model.output) == ["logits", "value"] and model.name == "policy"
    assert model.input_shape == (None, 4) and model.input.dtype == "float32"
    outputs = model(observations)
    assert outputs["logits"].shape == (7, 2) and outputs["value"].shape == (7, 1)
    assert [layer.__class__.__name__ for layer in model.layers].count("Dense") == 3

    default, _ = load_onnx(data, "policy", (4,))
    assert list(default.output) == ["pi", "v"]


def test_matmul_add_relu(rng):
    nodes = [helper.make_node("MatMul", ["obs", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["a"]),
             helper.make_node("Relu", ["a"], ["out"])]
    data = graph_bytes(nodes, ["n", 3], ["out"], {"w": weights(rng, 3, 5), "b": weights(rng, 5)})
    translated(data, (3,), rng.normal(size=(6, 3)).astype(np.float32))


def test_a_cnn_on_frames_matches_onnxruntime_to_1e_5_and_stays_channels_last(rng):
    model, description = translated(cnn(rng), (4, 84, 84), frames(rng), tolerance=1e-5)
    assert description.startswith("ONNX, opset 17, 8 nodes: Constant, Div, Conv, Relu, Flatten, Gemm;")
    kinds = [layer.__class__.__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == 2 and kinds.count("Permute") == 2  # in once, out once before Flatten


def layout_case(name, rng):
    """(graph bytes, observation shape, observations) for each operator mix below."""
    def const(value, output):
        return helper.make_node("Constant", [], [output], value=numpy_helper.from_array(np.asarray(value)))
    node, obs = helper.make_node, rng.normal(size=(5, 2, 3)).astype(np.float32) * 2
    shape = ["batch", 2, 3]
    if name == "clip, softmax, log-softmax":
        nodes = [const(np.float32(-0.5), "lo"), const(np.float32(0.7), "hi"),
                 node("Clip", ["obs", "lo", "hi"], ["c"]), node("Clip", ["obs", "", "hi"], ["c_max"]),
                 node("Softmax", ["obs"], ["s"], axis=-1), node("LogSoftmax", ["obs"], ["ls"], axis=1)]
        return graph_bytes(nodes, shape, ["c", "c_max", "s", "ls"]), (2, 3), obs
    if name == "opset 10: clip by attributes, softmax over the trailing axes":
        nodes = [node("Clip", ["obs"], ["c"], min=-0.5, max=0.7), node("Softmax", ["obs"], ["s"], axis=1),
                 node("LogSoftmax", ["obs"], ["ls"])]
        return graph_bytes(nodes, shape, ["c", "s", "ls"], opset=10), (2, 3), obs
    if name == "transpose, concat, reshape":
        nodes = [node("Transpose", ["obs"], ["t"], perm=[0, 2, 1]), node("Neg", ["t"], ["n"]),
                 node("Concat", ["t", "n"], ["cat"], axis=-1),
                 node("Reshape", ["cat", "to"], ["r"], allowzero=1), node("Reshape", ["obs", "keep"], ["k"])]
        constants = {"to": np.array([-1, 12], np.int64), "keep": np.array([0, 3, 2], np.int64)}
        return graph_bytes(nodes, shape, ["r", "k"], constants), (2, 3), obs
    if name == "shape arithmetic of the classic exporter, squeeze, unsqueeze":
        nodes = [node("Shape", ["obs"], ["s"]), const(np.int64(0), "zero"),
                 node("Gather", ["s", "zero"], ["n"], axis=0), const(np.array([0], np.int64), "ax0"),
                 node("Unsqueeze", ["n", "ax0"], ["n1"]), const(np.array([-1, 1], np.int64), "tail"),
                 node("Concat", ["n1", "tail"], ["to"], axis=0), node("Reshape", ["obs", "to"], ["r"]),
                 node("Squeeze", ["r", "axes"], ["sq"]), node("Unsqueeze", ["sq", "axes2"], ["un"])]
        constants = {"axes": np.array([2], np.int64), "axes2": np.array([1, -1], np.int64)}
        return graph_bytes(nodes, shape, ["un"], constants), (2, 3), obs
    if name == "gather and slice":
        nodes = [node("Gather", ["obs", "one"], ["g"], axis=2), node("Gather", ["obs", "picks"], ["gs"], axis=-1),
                 node("Slice", ["obs", "starts", "ends", "axes", "steps"], ["sl"]),
                 node("Slice", ["obs", "whole_start", "whole_end"], ["whole"])]
        constants = {"one": np.int64(1), "picks": np.array([-1, 0, 2, 0], np.int64),
                     "starts": np.array([-1, 0], np.int64), "ends": np.array([-2**63, 2**63 - 1], np.int64),
                     "axes": np.array([2, 1], np.int64), "steps": np.array([-1, 2], np.int64),
                     "whole_start": np.array([0, 1], np.int64), "whole_end": np.array([2**63 - 1, 9], np.int64)}
        return graph_bytes(nodes, shape, ["g", "gs", "sl", "whole"], constants), (2, 3), obs
    if name == "elementwise":
        nodes = [node("Sub", ["obs", "mean"], ["a"]), node("Mul", ["a", "scale"], ["b"]),
                 node("Div", ["two", "b"], ["c"]), node("Pow", ["b", "two"], ["d"]), node("Sqrt", ["d"], ["e"]),
                 node("Max", ["b", "zero", "e"], ["f"]), node("Min", ["b", "mean"], ["g"]), node("Exp", ["g"], ["h"]),
                 node("Sigmoid", ["b"], ["i"]), node("LeakyRelu", ["b"], ["j"], alpha=0.1),
                 node("Elu", ["b"], ["k"], alpha=0.5), node("Softplus", ["b"], ["l"]),
                 node("Cast", ["l"], ["m"], to=TensorProto.FLOAT), node("Identity", ["m"], ["o"])]
        constants = {"mean": np.float32([0.5, -0.5, 1.0]), "scale": np.float32([[2.0], [0.5]]),
                     "two": np.float32(2.0), "zero": np.float32(0.0)}
        outputs = ["c", "f", "h", "i", "j", "k", "o"]
        return graph_bytes(nodes, shape, outputs, constants), (2, 3), obs
    if name == "uint8 frames cast to float":
        nodes = [node("Cast", ["obs"], ["x"], to=TensorProto.FLOAT), node("Div", ["x", "c255"], ["y"]),
                 node("Flatten", ["y"], ["f"]), node("Gemm", ["f", "w"], ["out"], transB=1)]
        data = graph_bytes(nodes, ["batch", 2, 3], ["out"], {"c255": np.float32(255), "w": weights(rng, 4, 6)},
                           input_type=TensorProto.UINT8)
        return data, (2, 3), rng.integers(0, 256, size=(5, 2, 3)).astype(np.float32)
    if name == "a batch fixed at 1":
        nodes = [node("Reshape", ["obs", "to"], ["r"]), node("Gemm", ["r", "w"], ["out"])]
        constants = {"to": np.array([1, -1], np.int64), "w": weights(rng, 6, 2)}
        return graph_bytes(nodes, [1, 2, 3], ["out"], constants), (2, 3), obs
    raise AssertionError(name)


LAYOUT_CASES = ["clip, softmax, log-softmax", "opset 10: clip by attributes, softmax over the trailing axes",
                "transpose, concat, reshape", "shape arithmetic of the classic exporter, squeeze, unsqueeze",
                "gather and slice", "elementwise", "uint8 frames cast to float", "a batch fixed at 1"]


@pytest.mark.parametrize("case", LAYOUT_CASES)
def test_layout_and_elementwise_operators_match_onnxruntime(case, rng):
    data, observation_shape, observations = layout_case(case, rng)
    translated(data, observation_shape, observations)


def test_translations_save_as_keras_files_and_load_in_safe_mode(rng, tmp_path):
    cases = {"cnn": (cnn(rng), frames(rng, 3)), **{case: layout_case(case, rng)[::2] for case in LAYOUT_CASES}}
    for case, (data, observations) in cases.items():
        model, _ = load_onnx(data, "policy", observations.shape[1:])
        path = tmp_path / "policy.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        expected, found = model(observations), loaded(observations)
        assert list(found) == list(expected)
        for head in expected:
            np.testing.assert_array_equal(np.asarray(found[head]), np.asarray(expected[head]), err_msg=case)


JAX_WORKER = """
import sys
import numpy as np, keras
from attribution.rl.formats.onnx_model import load_onnx
folder = sys.argv[1]
found = {"backend": keras.backend.backend()}
for case in ("cnn", "elementwise"):
    observations = np.load(f"{folder}/{case}.npy")
    translated, _ = load_onnx(f"{folder}/{case}.onnx", "policy", observations.shape[1:])
    loaded = keras.saving.load_model(f"{folder}/{case}.keras", safe_mode=True)
    for how, model in (("translated", translated), ("loaded", loaded)):
        found.update({f"{case}/{how}/{head}": np.asarray(value) for head, value in model(observations).items()})
np.savez(f"{folder}/jax.npz", **found)
"""


def test_jax_gives_the_numbers_tensorflow_gives(rng, tmp_path):
    assert keras.backend.backend() == "tensorflow"
    expected = {}
    for case, (data, observations) in {"cnn": (cnn(rng), frames(rng, 3)),
                                       "elementwise": layout_case("elementwise", rng)[::2]}.items():
        (tmp_path / f"{case}.onnx").write_bytes(data)
        np.save(tmp_path / f"{case}.npy", observations)
        model, _ = load_onnx(data, "policy", observations.shape[1:])
        model.save(tmp_path / f"{case}.keras")
        expected.update({f"{case}/{how}/{head}": np.asarray(value) for head, value in model(observations).items()
                         for how in ("translated", "loaded")})

    xla_flags = os.environ.get("XLA_FLAGS", "").replace(backend.YNNPACK_FUSIONS, "").strip()
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags,
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    subprocess.run([sys.executable, "-c", JAX_WORKER, str(tmp_path)], env=env, check=True, timeout=600)
    on_jax = np.load(tmp_path / "jax.npz")
    assert str(on_jax["backend"]) == "jax" and set(on_jax.files) == {"backend", *expected}
    for key, value in expected.items():
        np.testing.assert_allclose(on_jax[key], value, rtol=1e-5, atol=1e-5, err_msg=key)


def test_a_keras_model_that_differs_from_the_file_is_caught(rng, monkeypatch):
    monkeypatch.setattr(onnx_model, "CHECK_ROWS", 3)  # two runs: 3 rows, then 1
    data, observations = mlp(rng), rng.normal(size=(4, 4)).astype(np.float32)
    model, _ = load_onnx(data, "policy", (4,), heads=("logits", "value"))
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][1]  # the "pi" Gemm
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, bias + 0.01])
    with pytest.raises(PolicyError, match=r"output 'pi' \(head 'logits'\) differs from onnxruntime by up to 0.01"):
        check_against_onnxruntime(data, model, observations)
    check_against_onnxruntime(data, model, observations, tolerance=0.02)


def external_tensor() -> TensorProto:
    """An initializer that points at a file beside the model, built by hand: nothing is written or read."""
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 4], data_location=TensorProto.EXTERNAL)
    for key, value in {"location": "weights.bin", "offset": "0", "length": "32"}.items():
        tensor.external_data.add(key=key, value=value)
    return tensor


def refused(name):
    """(bytes, observation shape) for each file below, which load_onnx refuses."""
    node, gemm = helper.make_node, helper.make_node("Gemm", ["obs", "w"], ["out"], transB=1)
    w = {"w": np.ones((2, 4), np.float32)}
    if name == "custom domain":
        data = graph_bytes([node("Fancy", ["obs"], ["out"], domain="com.example")], [None, 4], ["out"])
        model = onnx.load_model_from_string(data)
        model.opset_import.append(helper.make_opsetid("com.example", 1))
        return model.SerializeToString(), (4,)
    if name == "unknown operators":
        nodes = [node("NonMaxSuppression", ["obs", "obs"], ["n"]), node("Gemm", ["n", "w"], ["out"])]
        return graph_bytes(nodes, [None, 4], ["out"], w), (4,)
    if name == "a subgraph":
        branch = helper.make_graph([node("Identity", ["obs"], ["y"])], "branch", [],
                                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        nodes = [node("If", ["cond"], ["out"], then_branch=branch, else_branch=branch)]
        return graph_bytes(nodes, [None, 4], ["out"], {"cond": np.array(True)}), (4,)
    if name == "an ai.onnx.ml import":
        model = onnx.load_model_from_string(graph_bytes([gemm], [None, 4], ["out"], w))
        model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 3))
        return model.SerializeToString(), (4,)
    if name == "a local function":
        function = helper.make_function("local", "Twice", ["x"], ["y"], [node("Add", ["x", "x"], ["y"])],
                                        [helper.make_opsetid("", 17)])
        return graph_bytes([gemm], [None, 4], ["out"], w, functions=[function]), (4,)
    if name == "external data":
        model = onnx.load_model_from_string(graph_bytes([gemm], [None, 4], ["out"]))
        model.graph.initializer.append(external_tensor())
        return model.SerializeToString(), (4,)
    if name == "external data in a Constant":
        nodes = [node("Constant", [], ["w"], value=external_tensor()), gemm]
        return graph_bytes(nodes, [None, 4], ["out"]), (4,)
    if name == "a wrong input shape":
        return graph_bytes([gemm], [None, 4], ["out"], w), (3,)
    if name == "a batch of 8":
        return graph_bytes([gemm], [8, 4], ["out"], w), (4,)
    if name == "two inputs":
        extra = [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, [None, 4])]
        return graph_bytes([gemm], [None, 4], ["out"], w, extra_inputs=extra), (4,)
    if name == "a double input":
        return graph_bytes([gemm], [None, 4], ["out"], w, input_type=TensorProto.DOUBLE), (4,)
    if name == "truncated bytes":
        data = graph_bytes([gemm], [None, 4], ["out"], w)
        return data[: len(data) // 2], (4,)
    if name == "junk bytes":
        return bytes(np.random.default_rng(1).integers(0, 256, size=300, dtype=np.uint8)), (4,)
    if name == "softmax over the batch":
        return graph_bytes([node("Softmax", ["obs"], ["out"], axis=0)], [None, 4], ["out"]), (4,)
    if name == "a transpose that moves the batch":
        return graph_bytes([node("Transpose", ["obs"], ["out"])], [None, 4], ["out"]), (4,)
    if name == "a reshape that changes the batch":
        nodes = [node("Reshape", ["obs", "to"], ["out"])]
        return graph_bytes(nodes, [None, 4], ["out"], {"to": np.array([-1, 2], np.int64)}), (4,)
    if name == "arithmetic on the batch size":
        nodes = [node("Shape", ["obs"], ["s"]), node("Mul", ["s", "two"], ["s2"]),
                 node("Reshape", ["obs", "s2"], ["out"])]
        return graph_bytes(nodes, [None, 4], ["out"], {"two": np.int64(2)}), (4,)
    if name == "an output that ignores the observation":
        return graph_bytes([node("Identity", ["w"], ["out"])], [None, 4], ["out"], w), (4,)
    if name == "a cast to double":
        return graph_bytes([node("Cast", ["obs"], ["out"], to=TensorProto.DOUBLE)], [None, 4], ["out"]), (4,)
    if name == "a grouped convolution":
        nodes = [node("Conv", ["obs", "k"], ["out"], group=2)]
        return graph_bytes(nodes, [None, 2, 5, 5], ["out"], {"k": np.ones((2, 1, 3, 3), np.float32)}), (2, 5, 5)
    if name == "a cast without 'to'":
        return graph_bytes([node("Cast", ["obs"], ["out"])], [None, 4], ["out"]), (4,)
    if name == "a cast of constants without 'to'":
        nodes = [node("Cast", ["w"], ["w32"]), node("Gemm", ["obs", "w32"], ["out"], transB=1)]
        return graph_bytes(nodes, [None, 4], ["out"], w), (4,)
    if name == "a concat without 'axis'":
        return graph_bytes([node("Concat", ["obs", "obs"], ["out"])], [None, 4], ["out"]), (4,)
    if name == "an axis given as a float":
        return graph_bytes([node("Concat", ["obs", "obs"], ["out"], axis=1.0)], [None, 4], ["out"]), (4,)
    if name == "a Constant without a value":
        nodes = [node("Constant", [], ["c"]), node("Add", ["obs", "c"], ["out"])]
        return graph_bytes(nodes, [None, 4], ["out"]), (4,)
    if name == "an initializer whose dims say 10 but holds 2 values":
        model = onnx.load_model_from_string(graph_bytes([node("Add", ["obs", "b"], ["out"])], [None, 10], ["out"]))
        model.graph.initializer.append(TensorProto(name="b", data_type=TensorProto.FLOAT, dims=[10],
                                                   float_data=[1.0, 2.0]))
        return model.SerializeToString(), (10,)
    raise AssertionError(name)


REFUSALS = {
    "custom domain": r"the Fancy node making 'out' is in the domain 'com.example'",
    "unknown operators": r"outside the allowlist: NonMaxSuppression\.",
    "a subgraph": r"the If node making 'out' holds a subgraph; control flow",
    "an ai.onnx.ml import": r"operator sets \['ai.onnx.ml'\]",
    "a local function": r"defines functions \(Twice\)",
    "external data": r"'w' is stored in an external data file; external data files are never read",
    "external data in a Constant": r"external data files are never read",
    "a wrong input shape": r"'obs' has shape \['\?', 4\]; expected \(batch, 3\)",
    "a batch of 8": r"has shape \[8, 4\]; expected \(batch, 4\) with a symbolic batch or 1",
    "two inputs": r"2 inputs \(obs, hidden\); expected one",
    "a double input": r"input is DOUBLE; expected float32",
    "truncated bytes": r"expected an ONNX model",
    "junk bytes": r"expected an ONNX model",
    "softmax over the batch": r"works along the batch axis",
    "a transpose that moves the batch": r"perm \[1, 0\], which moves the batch",
    "a reshape that changes the batch": r"reshapes \(None, 4\) to \[-1, 2\], which changes the batch",
    "arithmetic on the batch size": r"the Mul node making 's2' computes with the batch size",
    "an output that ignores the observation": r"output 'out' does not depend on the observation",
    "a cast to double": r"casts to DOUBLE; expected float",
    "a grouped convolution": r"group = 2; expected 1",
    "a cast without 'to'": r"the Cast node making 'out' has no attribute 'to', which Cast requires",
    "a cast of constants without 'to'": r"the Cast node making 'w32' has no attribute 'to', which Cast requires",
    "a concat without 'axis'": r"the Concat node making 'out' has no attribute 'axis', which Concat requires",
    "an axis given as a float": r"has the attribute 'axis' as FLOAT; expected INT",
    "a Constant without a value": r"the Constant node making 'c' could not be folded",
    "an initializer whose dims say 10 but holds 2 values": r"the initializer 'b' could not be read: cannot reshape",
}


@pytest.mark.parametrize("name", REFUSALS)
def test_files_outside_the_allowlist_are_refused_with_the_reason(name):
    data, observation_shape = refused(name)
    with pytest.raises(PolicyError, match=REFUSALS[name]):
        load_onnx(data, "policy", observation_shape)


def hostile(name):
    """(bytes, observation shape) for small files that ask for big constants, tensors or graphs."""
    node, gemm = helper.make_node, helper.make_node("Gemm", ["obs", "w"], ["out"], transB=1)
    w = {"w": np.ones((2, 4), np.float32)}
    if name == "a Max of constants broadcast to 600 cubed":  # 7 KB: 864 MB folded
        constants = {"a": np.ones((600, 1, 1), np.float32), "b": np.ones((1, 600, 1), np.float32),
                     "c": np.ones((1, 1, 600), np.float32), **w}
        return graph_bytes([node("Max", ["a", "b", "c"], ["big"]), gemm], [None, 4], ["out"], constants), (4,)
    if name == "a MatMul of constants, (16000, 1) @ (1, 16000)":
        constants = {"a": np.ones((16000, 1), np.float32), "b": np.ones((1, 16000), np.float32), **w}
        return graph_bytes([node("MatMul", ["a", "b"], ["big"]), gemm], [None, 4], ["out"], constants), (4,)
    if name == "a Conv of constants":
        constants = {"x": np.ones((1, 1, 3, 3), np.float32), "k": np.ones((1, 1, 1, 1), np.float32), **w}
        return graph_bytes([node("Conv", ["x", "k"], ["big"]), gemm], [None, 4], ["out"], constants), (4,)
    if name == "a Concat of one constant 4000 times":
        nodes = [node("Concat", ["c"] * 4000, ["big"], axis=0), gemm]
        return graph_bytes(nodes, [None, 4], ["out"], {"c": np.ones(1000, np.float32), **w}), (4,)
    if name == "a Concat of constants of 64 x 70000 numbers":
        nodes = [node("Concat", ["c"] * 64, ["big"], axis=0), gemm]
        return graph_bytes(nodes, [None, 4], ["out"], {"c": np.ones(70000, np.float32), **w}), (4,)
    if name == "a 2-D Gather of constants":  # (1200 indices) x 4096
        constants = {"data": np.ones((2, 4096), np.float32), "picks": np.zeros((40, 30), np.int64), **w}
        return graph_bytes([node("Gather", ["data", "picks"], ["big"]), gemm], [None, 4], ["out"], constants), (4,)
    if name == "Concat of the observation 2000 times, twice":  # 16M numbers per example
        nodes = [node("Concat", ["obs"] * 2000, ["c1"], axis=1), node("Concat", ["c1"] * 2000, ["out"], axis=1)]
        return graph_bytes(nodes, [None, 4], ["out"]), (4,)
    if name == "Concat of the observation 64 times, then again to 5 million numbers per example":
        nodes = [node("Concat", ["obs"] * 64, ["c1"], axis=1), node("Concat", ["c1"] * 64, ["c2"], axis=1),
                 node("Concat", ["c2"] * 64, ["c3"], axis=1), node("Concat", ["c3"] * 5, ["out"], axis=1)]
        return graph_bytes(nodes, [None, 4], ["out"]), (4,)
    if name == "a Conv padded to 9 million numbers per example":
        nodes = [node("Conv", ["obs", "k"], ["out"], strides=[3000, 3000], pads=[1500, 1500, 1500, 1500])]
        return graph_bytes(nodes, [None, 1, 2, 2], ["out"], {"k": np.ones((1, 1, 1, 1), np.float32)}), (1, 2, 2)
    if name == "4097 nodes":
        return graph_bytes([node("Relu", ["obs"], [f"h{i}"]) for i in range(4097)], [None, 4], ["h0"]), (4,)
    if name == "a chain of 1000 Relu nodes":  # 17 KB
        nodes = [node("Relu", [f"h{i - 1}" if i else "obs"], [f"h{i}"]) for i in range(1000)]
        return graph_bytes(nodes, [None, 4], ["h999"]), (4,)
    raise AssertionError(name)


HOSTILE = {
    "a Max of constants broadcast to 600 cubed":
        r"the Max node making 'big' would fold constants into 216,000,000 numbers; the limit is 4,194,304\.",
    "a MatMul of constants, (16000, 1) @ (1, 16000)":
        r"the MatMul node making 'big' computes with constants of \[16000, 16000\] numbers; expected the exporter "
        r"to fold MatMul of constants \(here, only MatMul and Gemm of up to 1,024 numbers each",
    "a Conv of constants": r"the Conv node making 'big' computes with constants of \[9, 1\] numbers; expected the "
                           r"exporter to fold Conv",
    "a Concat of one constant 4000 times": r"the Concat node making 'big' has 4,000 inputs; nodes with up to 64",
    "a Concat of constants of 64 x 70000 numbers":
        r"the Concat node making 'big' would fold constants into 4,480,000 numbers",
    "a 2-D Gather of constants": r"the Gather node making 'big' would fold constants into 4,915,200 numbers",
    "Concat of the observation 2000 times, twice": r"the Concat node making 'c1' has 2,000 inputs",
    "Concat of the observation 64 times, then again to 5 million numbers per example":
        r"the Concat node making 'out' gives shape \(None, 5242880\): per example, 5,242,880 numbers; "
        r"the limit is 4,194,304\.",
    "a Conv padded to 9 million numbers per example":
        r"the Conv node making 'out' pads its input to shape \(None, 3002, 3002, 1\): per example, 9,012,004",
    "4097 nodes": r"the graph has 4,097 nodes; graphs of up to 4,096",
    "a chain of 1000 Relu nodes":
        r"the Relu node making 'h256' is 257 nodes deep; graphs with paths of up to 256 nodes are translated",
}


@pytest.mark.parametrize("name", HOSTILE)
def test_small_files_that_ask_for_big_constants_tensors_or_graphs_are_refused_before_allocating(name):
    data, observation_shape = hostile(name)
    assert len(data) < 400_000
    with pytest.raises(PolicyError, match=HOSTILE[name]):
        load_onnx(data, "policy", observation_shape)


def test_tiny_products_of_constants_are_folded(rng):
    """(2, 3) @ (3, 4) and a Gemm of constants, folded, then added to obs (batch, 4)."""
    nodes = [helper.make_node("MatMul", ["a", "b"], ["ab"]), helper.make_node("Gemm", ["a", "b", "c"], ["g"]),
             helper.make_node("Add", ["obs", "ab"], ["s"]), helper.make_node("Add", ["s", "g"], ["out"])]
    constants = {"a": weights(rng, 2, 3), "b": weights(rng, 3, 4), "c": weights(rng, 4)}
    translated(graph_bytes(nodes, [None, 2, 4], ["out"], constants), (2, 4), rng.normal(size=(3, 2, 4)))


def test_the_numbers_held_by_all_folded_constants_and_tensors_together_are_bounded(rng, monkeypatch):
    data = mlp(rng)  # obs (batch, 4) -> h (batch, 16), t (16), pi (2), v (1): 35 numbers per example, weights apart
    load_onnx(data, "policy", (4,))
    monkeypatch.setattr(onnx_model, "MAX_HELD", 34)
    held = r"the Gemm node making 'v' brings the numbers the translation holds \(folded constants, and every tensor"
    with pytest.raises(PolicyError, match=held + r" per example\) to 35; the limit is 34\."):
        load_onnx(data, "policy", (4,))
    nodes = [helper.make_node("Mul", ["a", "a"], ["a2"]), helper.make_node("Add", ["obs", "a2"], ["out"])]
    with pytest.raises(PolicyError, match=r"the Mul node making 'a2' brings .* to 40; the limit is 34"):
        load_onnx(graph_bytes(nodes, [None, 4], ["out"], {"a": np.ones((10, 4), np.float32)}), "policy", (4,))


def test_a_graph_too_deep_for_keras_within_the_depth_limit_is_refused():
    """Each Max of 64 inputs makes 63 Keras operations, one after another: a few dozen overflow the recursion."""
    n = sys.getrecursionlimit() // 63 + 2
    nodes = [helper.make_node("Max", [f"h{i - 1}" if i else "obs"] * 64, [f"h{i}"]) for i in range(n)]
    with pytest.raises(PolicyError, match=rf"the graph \({n} nodes\) is too deep for Keras to build a model of"):
        load_onnx(graph_bytes(nodes, [None, 4], [f"h{n - 1}"]), "policy", (4,))


def two_gemms(rng, outputs) -> bytes:
    """obs (batch, 4) -> Gemm -> outputs[0] (batch, 2) and, with a second name, Gemm -> outputs[1] (batch, 1)."""
    nodes = [helper.make_node("Gemm", ["obs", f"w{i}"], [name], transB=1) for i, name in enumerate(outputs)]
    constants = {"w0": weights(rng, 2, 4), "w1": weights(rng, 1, 4)}
    return graph_bytes(nodes, [None, 4], outputs, {f"w{i}": constants[f"w{i}"] for i in range(len(outputs))})


@pytest.mark.parametrize("outputs, action_space, heads", [
    (["pi"], gym.spaces.Discrete(2), ["logits"]),
    (["q_values"], gym.spaces.Discrete(2), ["q_values"]),
    (["actor"], gym.spaces.Box(-1, 1, (2,)), ["mean"]),
    (["logits", "value"], gym.spaces.Discrete(2), ["logits", "value"]),
    (["mean", "value"], gym.spaces.Box(-1, 1, (2,)), ["mean", "value"]),
])
def test_load_onnx_policy_names_the_heads_and_checks_256_seeded_observations(outputs, action_space, heads, rng,
                                                                            tmp_path, monkeypatch):
    path = tmp_path / "policy.onnx"
    path.write_bytes(two_gemms(rng, outputs))
    checked = []

    def check(*args):
        checked.append(args)
        check_against_onnxruntime(*args)

    monkeypatch.setattr(onnx_model, "check_against_onnxruntime", check)
    model, description = load_onnx_policy(path, gym.spaces.Box(-3, 3, (4,), np.float32), action_space)
    assert list(model.output) == heads and model.name == "policy.onnx"
    assert description.startswith(f"ONNX, opset 17, {len(outputs)} nodes: Gemm;")
    ((source, checked_model, observations, tolerance),) = checked
    space = gym.spaces.Box(-3, 3, (4,), np.float32)
    space.seed(0)
    np.testing.assert_array_equal(observations, np.stack([space.sample() for _ in range(256)]))
    assert checked_model is model and tolerance == 1e-4


def test_load_onnx_policy_refuses_several_outputs_named_otherwise(rng, tmp_path):
    path = tmp_path / "policy.onnx"
    path.write_bytes(two_gemms(rng, ["pi", "v"]))
    with pytest.raises(PolicyError, match=r"policy.onnx has outputs \['pi', 'v'\]; with more than one, name them "
                                          r"after the heads this app reads: 'logits' and 'value' \(or 'q_values'"):
        load_onnx_policy(path, gym.spaces.Box(-3, 3, (4,), np.float32), gym.spaces.Discrete(2))
    with pytest.raises(PolicyError, match=r"heads this app reads: 'mean' and 'value'"):
        load_onnx_policy(path, gym.spaces.Box(-3, 3, (4,), np.float32), gym.spaces.Box(-1, 1, (2,)))


def test_heads_must_name_each_output_and_big_files_are_refused(rng, tmp_path, monkeypatch):
    data = mlp(rng)
    with pytest.raises(PolicyError, match=r"outputs \['pi', 'v'\]; heads \['logits'\] must name each once"):
        load_onnx(data, "policy", (4,), heads=("logits",))
    (tmp_path / "policy.onnx").write_bytes(data)
    monkeypatch.setattr(onnx_model, "MAX_BYTES", 100)
    with pytest.raises(PolicyError, match=r"policy.onnx has [\d,]+ bytes; ONNX policies up to 0 MB"):
        load_onnx(tmp_path / "policy.onnx", "policy", (4,))


FIXTURES = ["onnx_mlp_cartpole", "onnx_cnn_pong", "onnx_pendulum_mean"]


@pytest.mark.parametrize("name", FIXTURES)
def test_files_exported_by_torch_reproduce_their_recorded_outputs(name):
    path, recorded = FOREIGN / f"{name}.onnx", FOREIGN / f"{name}.npz"
    if not (path.exists() and recorded.exists()):
        pytest.skip(f"{path.name} or {recorded.name} is absent")
    recorded = np.load(recorded)
    observations = recorded["observations"]
    model, description = load_onnx(path, name, observations.shape[1:])
    assert description.startswith("ONNX, opset 17") and description.endswith("produced by pytorch 2.13.0")
    outputs = model(observations)
    for head, value in outputs.items():
        np.testing.assert_allclose(np.asarray(value), recorded[head], rtol=0, atol=1e-5, err_msg=head)
    check_against_onnxruntime(path, model, observations, tolerance=1e-5)


def test_a_torch_export_with_external_data_is_refused_without_reading_it():
    path = FOREIGN / "onnx_external_data.onnx"
    if not path.exists():
        pytest.skip(f"{path.name} is absent")
    with pytest.raises(PolicyError, match="external data files are never read"):
        load_onnx(path, "policy", (4,))
