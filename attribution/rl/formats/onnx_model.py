"""ONNX policy files translated into Keras models, one allowlisted operator at a time.

Why translate instead of running onnxruntime in the app: Integrated Gradients needs the gradient of
each output with respect to the observation, on TensorFlow and on JAX, and onnxruntime computes
forward passes only. The translation is built from Keras's own layers (Dense, Conv2D, Permute,
Reshape, ...) and ``keras.ops`` operations, so it saves as ``.keras`` and loads back in safe mode
without custom code. onnxruntime is used only to check a translation: ``check_against_onnxruntime``.

The file is parsed by protobuf and nothing else runs from it. Refused, each with a message naming it:
external data (files beside the model are never read), operators outside the default ONNX domain,
model-local functions, subgraphs (If, Loop, Scan), more than one observation input, an input whose
shape is not the environment's, and every operator outside this allowlist, which is what
``torch.onnx.export`` (TorchScript and dynamo exporters) emits for MLP and CNN policies in the style
of Stable-Baselines3 and CleanRL:

    layers        Gemm, MatMul (constant weights become Dense), Conv (2D, group 1, explicit pads)
    activations   Relu, LeakyRelu, Elu, Tanh, Sigmoid, Softplus, Exp, Sqrt, Neg, Softmax, LogSoftmax
    arithmetic    Add, Sub, Mul, Div, Pow, Max, Min (e.g. division by 255, action rescaling), Clip
    layout        Flatten, Reshape, Transpose, Concat, Squeeze, Unsqueeze, Slice and Gather (constant
                  indices), Identity, Cast (to float)
    constants     Constant, and Shape, whose value is known but for the batch size

A node whose inputs are all constants is folded with ONNX's reference implementation (NumPy).
Every tensor that depends on the observation keeps the batch as its first axis: an operator that
would move the batch, mix examples or compute with the batch size is refused.

Sizes are bounded before anything is computed or allocated, so a small file cannot ask for gigabytes:
at most MAX_NODES nodes, MAX_INPUTS inputs to a node and MAX_DEPTH nodes on any path (deeper graphs
overflow the recursion of Keras's model building); a folded constant's size is worked out from its
inputs' shapes before folding, and it and every tensor per example hold at most MAX_ELEMENTS numbers,
MAX_HELD all together. MatMul and Gemm of constants are folded only when both are tiny (MAX_TINY
numbers each), Conv of constants never: exporters fold those themselves. The comparison with
onnxruntime runs CHECK_ROWS observations at a time.

Layout: ONNX images are NCHW and Keras's Conv2D runs channels-last on the CPU, so a convolution's
input is permuted to NHWC and its output back to NCHW, where Flatten and Reshape see ONNX's order.
Convolutions and the activations between them stay channels-last: their NCHW twins are only built
where something else reads them.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import keras
import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

from attribution.rl.errors import PolicyError

MAX_BYTES = 512 * 2**20
MAX_NODES = 4096           # nodes in the graph
MAX_INPUTS = 64            # inputs of one node
MAX_DEPTH = 256            # nodes on the longest path through the graph
MAX_ELEMENTS = 2**22       # numbers in one folded constant, or in one tensor per example
MAX_HELD = 2**24           # numbers in all folded constants and all tensors (per example) together
MAX_TINY = 2**10           # numbers in each factor of a MatMul or Gemm of constants that is folded
CHECK_ROWS = 16            # observations run through onnxruntime and Keras at a time
ONNX_CHECK_STATES = 256    # observations load_onnx_policy compares a translation with onnxruntime on
ONNX_TOLERANCE = 1e-4      # the largest difference of any output allowed there
MIN_OPSET = 9
BATCH = np.int64(-(2**62))  # a Shape node's value for the batch size, which the file does not fix
SHAPE_OPS = {"Identity", "Gather", "Squeeze", "Unsqueeze", "Concat", "Slice"}  # may carry BATCH along
WHOLE_AXIS = 2**31 - 1  # a Slice end at or past this takes a whole axis


@dataclasses.dataclass
class _Graph:
    """What has been translated so far: each ONNX value as a NumPy constant or a KerasTensor."""

    opset: int
    static_batch: bool  # the file fixes the batch at 1, so a leading 1 in a Reshape target is the batch
    values: dict[str, np.ndarray | keras.KerasTensor]
    channels_last: dict[str, keras.KerasTensor] = dataclasses.field(default_factory=dict)  # NHWC twins
    held: int = 0  # numbers in the folded constants and in every tensor per example, as counted by _hold


def load_onnx(source, name: str, observation_shape: tuple[int, ...],
              heads: tuple[str, ...] | None = None) -> tuple[keras.Model, str]:
    """An ONNX file (path or bytes) as a Keras model from (batch, *observation_shape) float32 to a dict of
    outputs named as the graph's outputs (or ``heads``, in order), and a one-line description of the file."""
    proto = _parse(_read(source))
    opset, graph = _vet(proto), proto.graph
    observation = _observation_input(graph, tuple(observation_shape))
    names = [output.name for output in graph.output]
    heads = tuple(names if heads is None else heads)
    if len(heads) != len(names) or len(set(heads)) != len(heads):
        raise PolicyError(f"the graph has outputs {names}; heads {list(heads)} must name each once, in order.")

    inputs = keras.Input(tuple(observation_shape), dtype="float32", name="observation")
    constants = {tensor.name: _initializer(tensor) for tensor in graph.initializer}
    cx = _Graph(opset, _fixed_batch(observation), constants)
    cx.values[observation.name] = inputs
    for node in graph.node:
        _translate(cx, node)

    outputs = {}
    for head, output in zip(heads, names, strict=True):
        if not isinstance(cx.values.get(output), keras.KerasTensor):
            raise PolicyError(f"the graph's output {output!r} does not depend on the observation; expected a tensor "
                              "computed from it.")
        outputs[head] = cx.values[output]
    try:
        model = keras.Model(inputs, outputs, name=name)
    except RecursionError as error:  # MAX_DEPTH counts nodes; a Max of 64 inputs makes 63 Keras operations
        raise PolicyError(f"the graph ({len(graph.node)} nodes) is too deep for Keras to build a model of; expected "
                          "fewer operations one after another.") from error
    return model, _describe(proto, opset)


def load_onnx_policy(path, observation_space: gym.spaces.Box, action_space: gym.Space) -> tuple[keras.Model, str]:
    """The ONNX file at ``path`` as a Keras model from observations (batch, *observation_space.shape) to the heads
    this app reads, checked against onnxruntime on ONNX_CHECK_STATES observations sampled with seed 0; and a
    one-line description of the file.

    One output is the actor: "mean" for a Box action space, else "logits", or "q_values" where the graph names it
    so. Several outputs keep their names, which must be among the actor, "value" and "q_values"."""
    path = Path(path)
    data = _read(path)
    names = [output.name for output in _parse(data).graph.output]
    actor = "mean" if isinstance(action_space, gym.spaces.Box) else "logits"
    if len(names) == 1:
        heads = ["q_values" if names == ["q_values"] else actor]
    elif set(names) <= {actor, "value", "q_values"}:
        heads = names
    else:
        raise PolicyError(f"{path.name} has outputs {sorted(names)}; with more than one, name them after the heads "
                          f"this app reads: {actor!r} and 'value' (or 'q_values' alone).")
    model, description = load_onnx(data, path.name, tuple(observation_space.shape), tuple(heads))
    observation_space.seed(0)
    samples = np.stack([observation_space.sample() for _ in range(ONNX_CHECK_STATES)]).astype(np.float32)
    check_against_onnxruntime(data, model, samples, ONNX_TOLERANCE)
    return model, description


def check_against_onnxruntime(source, model: keras.Model, observations: np.ndarray, tolerance: float = 1e-4) -> None:
    """Run onnxruntime and ``model`` on observations (N, *obs_shape), CHECK_ROWS at a time; raise PolicyError naming
    the first output (in the graph's order) where they differ by more than ``tolerance``."""
    import onnxruntime

    data = _read(source)
    proto = _parse(data)
    _vet(proto)  # onnxruntime would read external data files
    observation = _observation_input(proto.graph, tuple(model.input_shape[1:]))
    dtype = onnx.helper.tensor_dtype_to_np_dtype(_input_type(observation.type))
    step = 1 if _fixed_batch(observation) else CHECK_ROWS  # with a batch fixed at 1, onnxruntime takes one row
    try:
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's own error classes, from its compiled module
        raise PolicyError(f"onnxruntime could not load the file: {error}") from error
    graph_outputs = session.get_outputs()
    heads = [None] * len(graph_outputs)  # the model's name for each output, once it has run
    worst = np.zeros(len(graph_outputs))  # the largest difference of each output so far; NaN once one is NaN
    for start in range(0, len(observations), CHECK_ROWS):
        rows = np.asarray(observations[start:start + CHECK_ROWS], np.float32)
        try:
            runs = [session.run(None, {observation.name: rows[i:i + step].astype(dtype)})
                    for i in range(0, len(rows), step)]
        except Exception as error:  # as above
            raise PolicyError(f"onnxruntime could not run the file: {error}") from error
        expected = [np.concatenate(parts) for parts in zip(*runs, strict=True)]
        found = model(rows)
        heads = list(found) if isinstance(found, dict) else [None]
        if len(heads) != len(expected):
            raise PolicyError(f"the ONNX graph has {len(expected)} outputs; the Keras model has {len(heads)}.")
        for k, (head, output, reference) in enumerate(zip(heads, graph_outputs, expected, strict=True)):
            value = np.asarray(found[head] if head is not None else found)
            if value.shape != reference.shape:
                raise PolicyError(f"{_output_label(output.name, head)}: onnxruntime gives shape {reference.shape}; "
                                  f"the Keras model {value.shape}.")
            worst[k] = np.maximum(worst[k], np.max(np.abs(value.astype(np.float64) - reference), initial=0.0))
    for head, output, difference in zip(heads, graph_outputs, worst, strict=True):
        if not difference <= tolerance:
            raise PolicyError(f"{_output_label(output.name, head)} differs from onnxruntime by up to "
                              f"{difference:.3g}; expected at most {tolerance:g}.")


def _output_label(output: str, head: str | None) -> str:
    """"output 'pi' (head 'logits')", or "output 'pi'" where the head is the output's own name."""
    return f"output {output!r}" + (f" (head {head!r})" if head not in (None, output) else "")


# --- reading and vetting the file: nothing is translated before the whole file has passed ---

def _read(source) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        path = Path(source)
        if path.stat().st_size > MAX_BYTES:
            raise PolicyError(f"{path.name} has {path.stat().st_size:,} bytes; ONNX policies up to "
                              f"{MAX_BYTES // 2**20} MB are read.")
        data = path.read_bytes()
    if len(data) > MAX_BYTES:
        raise PolicyError(f"the ONNX file has {len(data):,} bytes; policies up to {MAX_BYTES // 2**20} MB are read.")
    return data


def _parse(data: bytes) -> onnx.ModelProto:
    try:
        proto = onnx.load_model_from_string(data, format="protobuf")  # parses only: never opens external data
    except Exception as error:  # protobuf's DecodeError, whose module depends on the protobuf backend
        raise PolicyError(f"expected an ONNX model; protobuf could not parse the file ({error}).") from error
    if proto.ir_version == 0 or not proto.HasField("graph") or not proto.graph.output:
        raise PolicyError("expected an ONNX model with a graph and outputs; the file parsed as something else.")
    return proto


def _vet(proto: onnx.ModelProto) -> int:
    """Refuse anything outside the allowlist or the limits on the graph's size, before any of the file is used;
    return the opset."""
    if proto.functions:
        raise PolicyError(f"the file defines functions ({', '.join(f.name for f in proto.functions)}); "
                          "model-local functions are never translated.")
    graph = proto.graph
    if graph.sparse_initializer:
        raise PolicyError("the graph has sparse initializers; expected dense tensors.")
    if len(graph.node) > MAX_NODES:
        raise PolicyError(f"the graph has {len(graph.node):,} nodes; graphs of up to {MAX_NODES:,} are translated.")
    tensors = [*graph.initializer]
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise PolicyError(f"{_label(node)} is in the domain {node.domain!r}; only the default ONNX domain "
                              "is translated.")
        if len(node.input) > MAX_INPUTS:
            raise PolicyError(f"{_label(node)} has {len(node.input):,} inputs; nodes with up to {MAX_INPUTS} are "
                              "translated.")
        for attribute in node.attribute:
            if attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise PolicyError(f"{_label(node)} holds a subgraph; control flow (If, Loop, Scan) is never "
                                  "translated.")
            if attribute.type == onnx.AttributeProto.SPARSE_TENSOR:
                raise PolicyError(f"{_label(node)} holds a sparse tensor; expected dense constants.")
            tensors += [attribute.t] if attribute.type == onnx.AttributeProto.TENSOR else [*attribute.tensors]
    for tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
            raise PolicyError(f"the tensor {tensor.name!r} is stored in an external data file; external data "
                              "files are never read: expected every weight inside the .onnx file.")
    refused = sorted({node.op_type for node in graph.node} - set(OPERATORS))
    if refused:
        raise PolicyError(f"the graph uses operators outside the allowlist: {', '.join(refused)}. "
                          f"Allowed: {', '.join(sorted(OPERATORS))}.")
    opset = _opset(proto)
    for node in graph.node:
        _vet_attributes(node, opset)
    _vet_depth(graph)
    return opset


def _vet_attributes(node: onnx.NodeProto, opset: int) -> None:
    """Refuse a node without an attribute that its operator's schema requires, or with one of the wrong type."""
    given = {attribute.name: attribute.type for attribute in node.attribute}
    for name, expected in onnx.defs.get_schema(node.op_type, opset, "").attributes.items():
        if expected.required and name not in given:
            raise PolicyError(f"{_label(node)} has no attribute {name!r}, which {node.op_type} requires.")
        if name in given and given[name] != expected.type.value:
            found = onnx.AttributeProto.AttributeType.Name(given[name])
            raise PolicyError(f"{_label(node)} has the attribute {name!r} as {found}; expected {expected.type.name}.")


def _vet_depth(graph: onnx.GraphProto) -> None:
    """Refuse a graph with more than MAX_DEPTH nodes on one path, whose Keras model would overflow the recursion of
    Keras's model building. Nodes read values made by earlier nodes (a node that does not is refused later)."""
    depth: dict[str, int] = {}  # value name: nodes on the longest path making it (0 for inputs, initializers)
    for node in graph.node:
        here = 1 + max((depth.get(name, 0) for name in node.input), default=0)
        if here > MAX_DEPTH:
            raise PolicyError(f"{_label(node)} is {here} nodes deep; graphs with paths of up to {MAX_DEPTH} nodes "
                              "are translated.")
        depth.update(dict.fromkeys(node.output, here))


def _opset(proto: onnx.ModelProto) -> int:
    """The default domain's opset version; other operator sets are refused."""
    versions = {entry.domain: entry.version for entry in proto.opset_import}
    others = sorted(set(versions) - {"", "ai.onnx"})
    if others:
        raise PolicyError(f"the file imports the operator sets {others}; only the default ONNX domain is translated.")
    opset, newest = versions.get("", versions.get("ai.onnx")), onnx.defs.onnx_opset_version()
    if opset is None or not MIN_OPSET <= opset <= newest:
        raise PolicyError(f"the file uses ONNX opset {opset}; expected {MIN_OPSET} to {newest}.")
    return opset


def _observation_input(graph: onnx.GraphProto, observation_shape: tuple[int, ...]) -> onnx.ValueInfoProto:
    """The one graph input that is not an initializer, checked against (batch, *observation_shape)."""
    initializers = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise PolicyError(f"the graph has {len(inputs)} inputs ({', '.join(v.name for v in inputs)}); "
                          "expected one, the observation.")
    (observation,) = inputs
    dtype = _input_type(observation.type)
    if dtype != onnx.TensorProto.FLOAT:
        readers = [node for node in graph.node if observation.name in node.input]
        if any(node.op_type != "Cast" or _attributes(node).get("to") != onnx.TensorProto.FLOAT for node in readers):
            raise PolicyError(f"the input {observation.name!r} is {onnx.TensorProto.DataType.Name(dtype)} and "
                              "used before a Cast to float; expected float32.")
    dims = observation.type.tensor_type.shape.dim
    shape = [dim.dim_value if dim.HasField("dim_value") else dim.dim_param or "?" for dim in dims]
    batch_ok = len(dims) > 0 and (not dims[0].HasField("dim_value") or dims[0].dim_value == 1)
    if not batch_ok or tuple(shape[1:]) != observation_shape:
        raise PolicyError(f"the input {observation.name!r} has shape {shape}; expected (batch, "
                          f"{', '.join(map(str, observation_shape))}) with a symbolic batch or 1.")
    return observation


def _fixed_batch(observation: onnx.ValueInfoProto) -> bool:
    """Whether the (vetted) input fixes the batch at 1 rather than leaving it symbolic."""
    return observation.type.tensor_type.shape.dim[0].HasField("dim_value")


def _input_type(value_type: onnx.TypeProto) -> int:
    """The element type of a tensor input: float, or an integer type (uint8 frames) cast to float."""
    if not value_type.HasField("tensor_type"):
        raise PolicyError("the graph's input is not a tensor; expected a float32 tensor of observations.")
    dtype = value_type.tensor_type.elem_type
    if dtype not in (onnx.TensorProto.FLOAT, onnx.TensorProto.UINT8, onnx.TensorProto.INT8, onnx.TensorProto.INT16,
                     onnx.TensorProto.INT32, onnx.TensorProto.INT64):
        raise PolicyError(f"the graph's input is {onnx.TensorProto.DataType.Name(dtype)}; expected float32.")
    return dtype


def _initializer(tensor: onnx.TensorProto) -> np.ndarray:
    """An initializer as a NumPy array of numbers; one whose data disagrees with its dims or type is refused."""
    try:
        value = onnx.numpy_helper.to_array(tensor)
    except Exception as error:  # ValueError (dims for more numbers than the data holds), TypeError, KeyError (types)
        raise PolicyError(f"the initializer {tensor.name!r} could not be read: {error}") from error
    if value.dtype.kind not in "biuf":
        raise PolicyError(f"the initializer {tensor.name!r} holds {value.dtype} values; expected numbers.")
    return value


def _describe(proto: onnx.ModelProto, opset: int) -> str:
    """"ONNX, opset 17, 9 nodes: Gemm, Tanh; produced by pytorch 2.13.0"."""
    ops = ", ".join(dict.fromkeys(node.op_type for node in proto.graph.node))
    producer = " ".join(filter(None, (proto.producer_name, proto.producer_version))) or "an unnamed producer"
    return f"ONNX, opset {opset}, {len(proto.graph.node)} nodes: {ops}; produced by {producer}"


# --- translation ---

def _translate(cx: _Graph, node: onnx.NodeProto) -> None:
    """Translate one node into cx.values: folded with NumPy when every input is constant, else into Keras."""
    missing = [name for name in node.input if name and name not in cx.values]
    if missing:
        raise PolicyError(f"{_label(node)} reads {missing}, which no earlier node or initializer produces.")
    inputs = [cx.values[name] if name else None for name in node.input]
    attributes = _attributes(node)
    try:
        if all(not isinstance(value, keras.KerasTensor) for value in inputs):
            outputs = _fold(cx, node, inputs, attributes)
        else:
            outputs = OPERATORS[node.op_type](cx, node, inputs, attributes)
    except PolicyError:
        raise
    except (ValueError, TypeError, IndexError, RuntimeError) as error:  # Keras or NumPy refusing shapes or values
        raise PolicyError(f"{_label(node)} could not be translated: {error}") from error
    outputs = outputs if isinstance(outputs, list) else [outputs]
    for name, value in zip(node.output, outputs, strict=False):
        if isinstance(value, keras.KerasTensor):
            if value.shape[:1] != (None,) or None in value.shape[1:]:
                raise PolicyError(f"{_label(node)} gives shape {value.shape}; expected the batch first and every "
                                  "other axis fixed.")
            _hold(cx, node, math.prod(value.shape[1:]), f"gives shape {value.shape}: per example,")
        cx.values[name] = value


def _hold(cx: _Graph, node: onnx.NodeProto, size: int, what: str) -> None:
    """Count ``size`` numbers, of one folded constant or of one tensor per example, against MAX_ELEMENTS and,
    with everything counted before, MAX_HELD; ``what`` says what the node makes, before the size."""
    if size > MAX_ELEMENTS:
        raise PolicyError(f"{_label(node)} {what} {size:,} numbers; the limit is {MAX_ELEMENTS:,}.")
    cx.held += size
    if cx.held > MAX_HELD:
        raise PolicyError(f"{_label(node)} brings the numbers the translation holds (folded constants, and every "
                          f"tensor per example) to {cx.held:,}; the limit is {MAX_HELD:,}.")


def _fold(cx: _Graph, node: onnx.NodeProto, inputs: list, attributes: dict) -> list[np.ndarray]:
    """A node on constants, run by ONNX's reference implementation once the size of its result is known."""
    if node.op_type == "Identity":
        return [inputs[0]]  # as it is, without a copy
    if node.op_type not in SHAPE_OPS and any(value is not None and np.any(value == BATCH) for value in inputs):
        raise PolicyError(f"{_label(node)} computes with the batch size; expected it only to be passed to Reshape.")
    _hold(cx, node, _folded_size(node, inputs, attributes), "would fold constants into")
    names = [name for name in node.input if name]
    try:
        run = ReferenceEvaluator(node, opsets={"": cx.opset})
        outputs = run.run(None, {name: cx.values[name] for name in names})
    except Exception as error:  # the reference implementation's errors on a malformed node, of any class
        raise PolicyError(f"{_label(node)} could not be folded: {error}") from error
    if any(np.asarray(value).dtype.kind not in "biuf" for value in outputs):
        raise PolicyError(f"{_label(node)} makes a non-numeric constant; expected numbers.")
    return [np.asarray(value) for value in outputs]


def _folded_size(node: onnx.NodeProto, inputs: list, attributes: dict) -> int:
    """The number of elements folding ``node`` makes, from the shapes of its constant inputs alone."""
    shapes = [np.shape(value) for value in inputs if value is not None]
    op = node.op_type
    if op in ("MatMul", "Gemm", "Conv"):
        sizes = [math.prod(shape) for shape in shapes]
        if op == "Conv" or max(sizes) > MAX_TINY:
            raise PolicyError(f"{_label(node)} computes with constants of {sizes} numbers; expected the exporter to "
                              f"fold {op} of constants (here, only MatMul and Gemm of up to {MAX_TINY:,} numbers each "
                              "are folded).")
        return sizes[0] * sizes[1]  # (m, k) @ (k, n) has m * n <= (m * k) * (k * n) numbers
    if op in ("Concat", "Gather"):
        rank = len(shapes[0])
        axis = attributes["axis"] if op == "Concat" else attributes.get("axis", 0)
        if not -rank <= axis < rank:
            raise PolicyError(f"{_label(node)}: axis {axis} is outside a constant of shape {shapes[0]}.")
        axis %= rank
        others = math.prod(shapes[0][:axis]) * math.prod(shapes[0][axis + 1:])
        if op == "Concat":  # the inputs' lengths along the axis added up
            return others * sum(shape[axis] for shape in shapes)
        return others * math.prod(shapes[1])  # the axis replaced by the indices' shape
    if not shapes:
        return 0  # Constant: its value comes from the file, which MAX_BYTES bounds
    if op == "Shape":
        return len(shapes[0])
    if op in ("Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Slice", "Cast"):
        return math.prod(shapes[0])  # at most as many as the data
    return math.prod(np.broadcast_shapes(*shapes))  # elementwise operators, Clip, Softmax: NumPy's broadcasting


def _label(node: onnx.NodeProto) -> str:
    if node.name:
        return f"node {node.name!r} ({node.op_type})"
    return f"the {node.op_type} node making {node.output[0]!r}" if node.output else f"an unnamed {node.op_type} node"


def _attributes(node: onnx.NodeProto) -> dict:
    return {attribute.name: onnx.helper.get_attribute_value(attribute) for attribute in node.attribute}


def _constant(node: onnx.NodeProto, value, what: str) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise PolicyError(f"{_label(node)}: {what} depends on the observation; expected a constant.")
    return value


def _float(value):
    """Constants as float32 NumPy arrays (Keras stores them in the model's config); tensors unchanged."""
    return np.asarray(value, np.float32) if isinstance(value, np.ndarray) else value


def _axis(node: onnx.NodeProto, axis: int, rank: int) -> int:
    """``axis`` in [1, rank): negative axes counted from the end; the batch axis refused."""
    if not -rank <= axis < rank:
        raise PolicyError(f"{_label(node)}: axis {axis} is outside a tensor of rank {rank}.")
    if axis % rank == 0:
        raise PolicyError(f"{_label(node)} works along the batch axis; expected it to treat examples separately.")
    return axis % rank


def _ints(node: onnx.NodeProto, attributes: dict, key: str, inputs: list, index: int, what: str) -> list[int] | None:
    """An integer list given as an attribute (older opsets) or as a constant input; None where absent."""
    if key in attributes:
        return list(attributes[key])
    if len(inputs) > index and inputs[index] is not None:
        return [int(v) for v in np.ravel(_constant(node, inputs[index], what))]
    return None


def _reshape(x, shape) -> keras.KerasTensor:
    """x (batch, ...) as (batch, *shape)."""
    return keras.layers.Reshape(tuple(int(d) for d in shape))(x)


def _dense(x, kernel: np.ndarray, bias: np.ndarray | None) -> keras.KerasTensor:
    """x (batch, ..., K) @ kernel (K, N) + bias (N,), as a Dense layer holding the weights."""
    layer = keras.layers.Dense(kernel.shape[1], use_bias=bias is not None)
    layer.build(x.shape)
    layer.set_weights([np.asarray(kernel, np.float32)] + ([np.asarray(bias, np.float32)] if bias is not None else []))
    return layer(x)


def _gemm(cx, node, inputs, attributes):
    """alpha * A (batch, K) @ B + beta * C, B (K, N) or (N, K) with transB, C broadcast to (N,)."""
    a, b, c = (inputs + [None, None])[:3]
    b = _constant(node, b, "B, the weights,")
    if attributes.get("transA", 0):
        raise PolicyError(f"{_label(node)} transposes A, which would move the batch; expected transA = 0.")
    kernel = attributes.get("alpha", 1.0) * (b.T if attributes.get("transB", 0) else b)
    bias = None
    if c is not None:
        bias = attributes.get("beta", 1.0) * np.broadcast_to(_constant(node, c, "C, the bias,"), (1, kernel.shape[1]))
    return _dense(a, kernel, None if bias is None else bias[0])


def _matmul(cx, node, inputs, attributes):
    """A @ B with NumPy's broadcasting; a constant 2D B becomes a Dense layer."""
    a, b = inputs
    if isinstance(b, np.ndarray) and b.ndim == 2:
        return _dense(a, b, None)
    return keras.ops.matmul(_float(a), _float(b))


def _conv(cx, node, inputs, attributes):
    """A 2D convolution of x (batch, C, H, W) with a constant kernel (O, C, kh, kw), run channels-last."""
    x, kernel, bias = (inputs + [None])[:3]
    kernel = _constant(node, kernel, "the kernel")
    if kernel.ndim != 4:
        raise PolicyError(f"{_label(node)} has a kernel of shape {kernel.shape}; only 2D convolutions "
                          "(out, in, kh, kw) are translated.")
    if attributes.get("group", 1) != 1:
        raise PolicyError(f"{_label(node)} has group = {attributes['group']}; expected 1.")
    if attributes.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID"):
        raise PolicyError(f"{_label(node)} has auto_pad {attributes['auto_pad'].decode()}; expected explicit pads.")
    top, left, bottom, right = attributes.get("pads", (0, 0, 0, 0))
    h = cx.channels_last.get(node.input[0])
    h = keras.layers.Permute((2, 3, 1))(x) if h is None else h
    if top or left or bottom or right:
        h = keras.layers.ZeroPadding2D(((top, bottom), (left, right)), data_format="channels_last")(h)
        _hold(cx, node, math.prod(h.shape[1:]), f"pads its input to shape {h.shape}: per example,")
    layer = keras.layers.Conv2D(kernel.shape[0], kernel.shape[2:], strides=tuple(attributes.get("strides", (1, 1))),
                                dilation_rate=tuple(attributes.get("dilations", (1, 1))), padding="valid",
                                data_format="channels_last", use_bias=bias is not None)
    layer.build(h.shape)
    biases = [] if bias is None else [_constant(node, bias, "the bias")]
    layer.set_weights([kernel.transpose(2, 3, 1, 0), *biases])
    cx.channels_last[node.output[0]] = h = layer(h)
    return keras.layers.Permute((3, 1, 2))(h)


def _unary(function: Callable) -> Callable:
    """An elementwise operator; applied to the channels-last twin too where the input has one."""
    def translate(cx, node, inputs, attributes):
        twin = cx.channels_last.get(node.input[0])
        if twin is None:
            return function(inputs[0], attributes)
        cx.channels_last[node.output[0]] = twin = function(twin, attributes)
        return keras.layers.Permute((3, 1, 2))(twin)
    return translate


def _binary(function: Callable) -> Callable:
    """An elementwise operator on two or more inputs (Max, Min take any number), NumPy broadcasting."""
    def translate(cx, node, inputs, attributes):
        return functools.reduce(function, [_float(value) for value in inputs])
    return translate


def _softmax(function: Callable) -> Callable:
    """Softmax or LogSoftmax along ``axis``; before opset 13, over all axes from ``axis`` on."""
    def translate(cx, node, inputs, attributes):
        x = inputs[0]
        rank = len(x.shape)
        axis = _axis(node, attributes.get("axis", -1 if cx.opset >= 13 else 1), rank)
        if cx.opset >= 13 or axis == rank - 1:
            return function(x, axis=axis)
        return _reshape(function(_reshape(x, (*x.shape[1:axis], -1)), axis=-1), x.shape[1:])
    return translate


def _clip(cx, node, inputs, attributes):
    """min(max(x, low), high), the bounds constants given as inputs or (before opset 11) attributes."""
    x, low, high = (inputs + [None, None])[:3]
    low = np.asarray(attributes["min"]) if "min" in attributes else low
    high = np.asarray(attributes["max"]) if "max" in attributes else high
    if low is not None:
        x = keras.ops.maximum(x, _float(_constant(node, low, "the lower bound")))
    if high is not None:
        x = keras.ops.minimum(x, _float(_constant(node, high, "the upper bound")))
    return x


def _flatten(cx, node, inputs, attributes):
    """(batch, ...) to (batch, prod(...)); only axis 1 keeps the batch."""
    x = inputs[0]
    if attributes.get("axis", 1) % len(x.shape) != 1:
        raise PolicyError(f"{_label(node)} has axis {attributes.get('axis', 1)}; expected 1, which keeps the batch.")
    return _reshape(x, (int(np.prod(x.shape[1:])),))


def _reshape_node(cx, node, inputs, attributes):
    """x to a constant target shape whose first entry is the batch: from Shape, 0 (copy), -1 or a static 1."""
    x, target = inputs
    target = [int(d) for d in _constant(node, target, "the target shape")]
    if not target:
        raise PolicyError(f"{_label(node)} reshapes to a scalar; expected the batch first.")
    first, rest = target[0], target[1:]
    if not attributes.get("allowzero", 0):
        rest = [x.shape[i + 1] if d == 0 and i + 1 < len(x.shape) else d for i, d in enumerate(rest)]
    size = int(np.prod(x.shape[1:]))
    keeps_batch = (first == BATCH or (first == 0 and not attributes.get("allowzero", 0))
                   or (first == 1 and cx.static_batch)
                   or (first == -1 and -1 not in rest and int(np.prod(rest)) == size))
    if BATCH in rest or not keeps_batch:
        shown = ["batch" if d == BATCH else d for d in target]
        raise PolicyError(f"{_label(node)} reshapes {x.shape} to {shown}, which changes the batch; expected the "
                          "batch first.")
    return _reshape(x, rest)


def _transpose(cx, node, inputs, attributes):
    """A permutation of the axes that keeps the batch first."""
    x = inputs[0]
    perm = list(attributes.get("perm", range(len(x.shape) - 1, -1, -1)))
    if perm[0] != 0:
        raise PolicyError(f"{_label(node)} has perm {perm}, which moves the batch; expected perm[0] = 0.")
    return keras.layers.Permute(tuple(perm[1:]))(x)


def _concat(cx, node, inputs, attributes):
    """Tensors joined along a non-batch axis."""
    if any(not isinstance(value, keras.KerasTensor) for value in inputs):
        raise PolicyError(f"{_label(node)} joins constants with tensors computed from the observation; expected "
                          "only the latter.")
    axis = _axis(node, attributes["axis"], len(inputs[0].shape))
    return inputs[0] if len(inputs) == 1 else keras.layers.Concatenate(axis=axis)(inputs)


def _squeeze(cx, node, inputs, attributes):
    """Axes of length 1 dropped: the listed ones, or every one but the batch."""
    x = inputs[0]
    axes = _ints(node, attributes, "axes", inputs, 1, "the axes")
    if axes is None:
        drop = {axis for axis in range(1, len(x.shape)) if x.shape[axis] == 1}
    else:
        drop = {_axis(node, axis, len(x.shape)) for axis in axes}
        if any(x.shape[axis] != 1 for axis in drop):
            raise PolicyError(f"{_label(node)} squeezes axes {axes} of shape {x.shape}; expected axes of length 1.")
    return _reshape(x, [d for axis, d in enumerate(x.shape) if axis and axis not in drop])


def _unsqueeze(cx, node, inputs, attributes):
    """Axes of length 1 inserted at positions of the output, after the batch."""
    x = inputs[0]
    axes = _ints(node, attributes, "axes", inputs, 1, "the axes")
    rank = len(x.shape) + len(axes)
    shape = list(x.shape[1:])
    for axis in sorted(_axis(node, axis, rank) for axis in axes):
        shape.insert(axis - 1, 1)
    return _reshape(x, shape)


def _indices(node, indices: np.ndarray, length: int) -> np.ndarray:
    if np.any(indices < -length) or np.any(indices >= length):
        raise PolicyError(f"{_label(node)} picks indices {indices.tolist()} from an axis of length {length}.")
    return np.where(indices < 0, indices + length, indices).astype(np.int32)


def _gather(cx, node, inputs, attributes):
    """Entries picked along a non-batch axis at constant indices (a scalar index drops the axis)."""
    x, indices = inputs
    axis = _axis(node, attributes.get("axis", 0), len(x.shape))
    indices = _constant(node, indices, "the indices")
    return keras.ops.take(x, _indices(node, indices, x.shape[axis]), axis=axis)


def _slice(cx, node, inputs, attributes):
    """x[start:end:step] along constant axes, taken as indices; the batch axis only whole."""
    x = inputs[0]
    rank = len(x.shape)
    starts = _ints(node, attributes, "starts", inputs, 1, "the starts")
    ends = _ints(node, attributes, "ends", inputs, 2, "the ends")
    axes = _ints(node, attributes, "axes", inputs, 3, "the axes") or list(range(len(starts)))
    steps = _ints(node, attributes, "steps", inputs, 4, "the steps") or [1] * len(starts)
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        if axis % rank == 0 and (start, step) == (0, 1) and end >= WHOLE_AXIS:
            continue
        axis = _axis(node, axis, rank)
        x = keras.ops.take(x, np.arange(x.shape[axis])[start:end:step].astype(np.int32), axis=axis)
    return x


def _cast(cx, node, inputs, attributes):
    """A cast to float32, which translated tensors already are."""
    if attributes["to"] != onnx.TensorProto.FLOAT:
        raise PolicyError(f"{_label(node)} casts to {onnx.TensorProto.DataType.Name(attributes['to'])}; expected "
                          "float.")
    return inputs[0]


def _shape(cx, node, inputs, attributes):
    """The shape of a tensor computed from the observation: constant but for the batch size, BATCH."""
    shape = np.array([BATCH, *inputs[0].shape[1:]], np.int64)
    return shape[attributes.get("start", 0):attributes.get("end", len(shape))]


OPERATORS: dict[str, Callable] = {
    "Gemm": _gemm, "MatMul": _matmul, "Conv": _conv,
    "Relu": _unary(lambda x, a: keras.ops.relu(x)),
    "LeakyRelu": _unary(lambda x, a: keras.ops.leaky_relu(x, negative_slope=a.get("alpha", 0.01))),
    "Elu": _unary(lambda x, a: keras.ops.elu(x, alpha=a.get("alpha", 1.0))),
    "Tanh": _unary(lambda x, a: keras.ops.tanh(x)),
    "Sigmoid": _unary(lambda x, a: keras.ops.sigmoid(x)),
    "Softplus": _unary(lambda x, a: keras.ops.softplus(x)),
    "Exp": _unary(lambda x, a: keras.ops.exp(x)),
    "Sqrt": _unary(lambda x, a: keras.ops.sqrt(x)),
    "Neg": _unary(lambda x, a: keras.ops.negative(x)),
    "Identity": lambda cx, node, inputs, attributes: inputs[0],
    "Softmax": _softmax(keras.ops.softmax), "LogSoftmax": _softmax(keras.ops.log_softmax),
    "Add": _binary(keras.ops.add), "Sub": _binary(keras.ops.subtract), "Mul": _binary(keras.ops.multiply),
    "Div": _binary(keras.ops.divide), "Pow": _binary(keras.ops.power),
    "Max": _binary(keras.ops.maximum), "Min": _binary(keras.ops.minimum),
    "Clip": _clip, "Flatten": _flatten, "Reshape": _reshape_node, "Transpose": _transpose, "Concat": _concat,
    "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "Gather": _gather, "Slice": _slice, "Cast": _cast,
    "Shape": _shape,
    "Constant": None,  # always folded: it has no inputs
}
