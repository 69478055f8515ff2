"""Reading a PyTorch state_dict (``torch.save(model.state_dict(), path)``) as NumPy arrays, without torch
and without letting the file's pickle run anything.

The format (torch/serialization.py, ``_save`` and ``_load``) is a zip whose members sit in one folder:

    <archive>/data.pkl        the pickle of the state_dict: an OrderedDict, parameter name -> tensor
    <archive>/data/<key>      one storage's values, little-endian, nothing else
    <archive>/byteorder       "little" (absent in files older than torch 1.10)
    <archive>/version, .format_version, .storage_alignment, .data/serialization_id   (not needed here)

In the pickle a tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
backward_hooks[, metadata])`` (a Parameter wraps one in ``torch._utils._rebuild_parameter``), and a storage
is a persistent id ``('storage', torch.FloatStorage, key, location, numel)``: ``numel`` float32 values in
``data/<key>``. Views keep their storage: two tensors may share one, at offsets, with any strides.
torch also sets the dict's ``_metadata`` ({module: {'version': 1}}) with a BUILD; it is ignored.

Why nothing in the file runs: a pickle calls only what ``find_class`` hands it. Here that is, for exactly
the globals above, a stand-in that records its arguments (``_Global``); any other global is refused by
name before anything is called. The stand-ins and records are named tuples, so BUILD (which sets an
object's state) cannot change them, and no NumPy or torch object ever reaches the pickle. Tensors are
made afterwards: a storage member must hold exactly the bytes its id claims, and a view must lie inside
its storage (offset, sizes and strides >= 0, its last element before the storage's end) before
``as_strided`` reads it; all the arrays together may take at most the limit of the archive's bytes.
The zip itself is opened through ``archives``, which checks its directory before anything is inflated.
"""

from __future__ import annotations

import io
import math
import pickle
from typing import NamedTuple

import numpy as np

from attribution.rl.archives import STATE_DICT_LIMITS, ArchiveError, CheckedArchive, open_archive
from attribution.rl.errors import PolicyError

MAX_STATE_DICTS = 8  # in one file: a tuple of them, as CleanRL's TD3 saves
MAX_KEYS = 4096      # tensors in one state_dict: far more than any policy network has
# storage class -> (the dtype of its bytes in data/<key>, what messages call its values)
STORAGES = {"torch.DoubleStorage": ("<f8", "float64"), "torch.FloatStorage": ("<f4", "float32"),
            "torch.HalfStorage": ("<f2", "float16"), "torch.BFloat16Storage": ("<u2", "bfloat16"),
            "torch.LongStorage": ("<i8", "int64"), "torch.IntStorage": ("<i4", "int32"),
            "torch.ShortStorage": ("<i2", "int16"), "torch.CharStorage": ("i1", "int8"),
            "torch.ByteStorage": ("u1", "uint8"), "torch.BoolStorage": ("u1", "bool")}


class _Refused(Exception):
    """Something a state_dict never holds; ``read_state_dict`` puts the file's name before the message."""


def _show(value, width: int = 60) -> str:
    """``repr(value)``, cut to ``width`` characters (a pickle may hold ints too long to print, or deep nesting)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        text = f"a {type(value).__name__} too large to print"
    return text if len(text) <= width else text[:width - 3] + "..."


class _StateDict(dict):
    """collections.OrderedDict's stand-in (a dict keeps its order). BUILD may set torch's ``_metadata`` only."""

    __slots__ = ()

    def __setstate__(self, state) -> None:
        if not (isinstance(state, dict) and set(state) <= {"_metadata"}):
            raise _Refused(f"its pickle sets a dict's state to {_show(state)}; a state_dict sets only _metadata")


class _Global(NamedTuple):
    """What the pickle gets for an allowed global: calling it calls ``make`` (None: a storage class)."""

    name: str
    make: object = None

    def __call__(self, *args):
        if self.make is None:
            raise _Refused(f"its pickle calls {self.name}, which a state_dict never calls")
        return self.make(*args)


class _Storage(NamedTuple):
    """A reference to member ``data/<key>``: ``numel`` values of storage class ``kind``, read when needed."""

    key: str
    kind: str
    numel: int


class _Tensor(NamedTuple):
    """A view of a storage, in elements: ``size`` and ``stride`` (tuples, one per axis) from ``offset``."""

    storage: object
    offset: object
    size: object
    stride: object


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks, metadata=None) -> _Tensor:
    if metadata:  # torch writes it only for a conjugate or negative view, of complex tensors
        raise _Refused(f"a tensor carries the metadata {_show(metadata)}; only plain tensors are read")
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks) -> _Tensor:
    if not isinstance(data, _Tensor):
        raise _Refused(f"a Parameter wraps {_what(data)}, not a tensor")
    return data


GLOBALS = {"collections.OrderedDict": _StateDict, "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
           "torch._utils._rebuild_parameter": _rebuild_parameter, "torch.Size": tuple, **dict.fromkeys(STORAGES)}


class _Unpickler(pickle.Unpickler):
    """Unpickles data.pkl into dicts of ``_Tensor`` records; nothing outside ``GLOBALS`` is ever reached."""

    def __init__(self, data: bytes):
        super().__init__(io.BytesIO(data))
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> _Global:
        found = f"{module}.{name}"
        if found in GLOBALS:
            return _Global(found, GLOBALS[found])
        if name.endswith("Storage"):
            raise _Refused(f"its pickle asks for the storage class {found}; expected one of {', '.join(STORAGES)}")
        raise _Refused(f"its pickle asks for {found}; a state_dict holds only tensors, so it is refused and "
                       "nothing in it is run.")

    def persistent_load(self, pid) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise _Refused(f"its pickle holds the persistent id {_show(pid)}; expected ('storage', storage class, "
                           "key, location, number of values)")
        _, kind, key, location, numel = pid
        if not (isinstance(kind, _Global) and kind.name in STORAGES):
            raise _Refused(f"a storage's class is {getattr(kind, 'name', type(kind).__name__)}; expected one of "
                           f"{', '.join(STORAGES)}")
        if not (type(key) is str and type(location) is str and type(numel) is int
                and 0 <= numel <= STATE_DICT_LIMITS.max_total_bytes):
            raise _Refused(f"a storage's key, location and number of values are {_show(key)}, {_show(location)} and "
                           f"{_show(numel)}; expected two strings and an integer from 0 to "
                           f"{STATE_DICT_LIMITS.max_total_bytes:,}")
        storage = self.storages.setdefault(key, _Storage(key, kind.name, numel))
        if storage != (key, kind.name, numel):
            raise _Refused(f"storage 'data/{key}' is claimed as {storage.numel:,} {STORAGES[storage.kind][1]} values "
                           f"and as {numel:,} {STORAGES[kind.name][1]} values")
        return storage


def _values(archive: CheckedArchive, folder: str, storage: _Storage) -> np.ndarray:
    """The storage's values, shape (numel,): float32 for bfloat16 (its top 16 bits), bool for bool."""
    member, (dtype, what) = f"{folder}/data/{storage.key}", STORAGES[storage.kind]
    if member not in archive.members:
        raise _Refused(f"storage 'data/{storage.key}' is not in the file, though the pickle refers to it")
    n_bytes, claimed = archive.members[member].file_size, storage.numel * np.dtype(dtype).itemsize
    if n_bytes != claimed:
        raise _Refused(f"storage 'data/{storage.key}' holds {n_bytes:,} bytes; the pickle says {storage.numel:,} "
                       f"{what} values ({claimed:,} bytes).")
    values = np.frombuffer(archive.read(member), dtype)
    if what == "bfloat16":
        return (values.astype("<u4") << 16).view("<f4")
    return values != 0 if what == "bool" else values


def _array(key: str, tensor: _Tensor, values: np.ndarray, budget: int) -> np.ndarray:
    """The view ``tensor`` of the storage ``values`` (shape (numel,)) as a new array of shape ``tensor.size``,
    of at most ``budget`` bytes."""
    storage, offset, size, stride = tensor

    def counts(v) -> bool:
        return isinstance(v, tuple) and len(v) <= 64 and all(type(n) is int and 0 <= n < 2**63 for n in v)

    if not (type(offset) is int and 0 <= offset < 2**63 and counts(size) and counts(stride)
            and len(size) == len(stride)):
        raise _Refused(f"tensor {key!r} has offset {_show(offset)}, size {_show(size)} and stride {_show(stride)}; "
                       "expected integers >= 0, at most 64 sizes and as many strides")
    if any(step == 0 and n > 1 for n, step in zip(size, stride, strict=True)):
        raise _Refused(f"tensor {key!r} repeats its values along an axis (size {size}, stride {stride}); "
                       "a state_dict's tensors have values of their own")
    # as if no axis were empty, and as float32 at least (what the model is built from)
    n_bytes = math.prod(max(n, 1) for n in size) * max(values.itemsize, 4)
    if n_bytes > budget:
        raise _Refused(f"tensor {key!r} (size {_show(size)}) would take {n_bytes:,} bytes, and a state_dict may "
                       f"take at most {STATE_DICT_LIMITS.max_total_bytes:,} in all")
    if 0 in size:
        return np.zeros(size, values.dtype)
    last = offset + sum((n - 1) * step for n, step in zip(size, stride, strict=True))
    if last >= storage.numel:
        raise _Refused(f"tensor {key!r} (offset {offset}, size {size}, stride {stride}) reaches element {last:,} of "
                       f"storage 'data/{storage.key}', which holds {storage.numel:,} values")
    strides = [step * values.itemsize if n > 1 else 0 for n, step in zip(size, stride, strict=True)]
    view = np.lib.stride_tricks.as_strided(values[offset:], shape=size, strides=strides, writeable=False)
    return np.array(view, order="C")  # a copy; np.ascontiguousarray would make a 0-d tensor 1-d


def _read(archive: CheckedArchive) -> list[dict[str, np.ndarray]]:
    """The state_dict (or tuple of them) in ``archive``, checked as the module's docstring says."""
    folders = {member.split("/", 1)[0] for member in archive.members}
    folder = folders.pop() if len(folders) == 1 else ""
    if f"{folder}/data.pkl" not in archive.members:
        raise _Refused(f"its members are {_show(sorted(archive.members), 200)}; a file written by torch.save holds "
                       "one folder with data.pkl in it")
    byteorder = archive.read(f"{folder}/byteorder") if f"{folder}/byteorder" in archive.members else b"little"
    if byteorder != b"little":
        raise _Refused(f"its byteorder is {_show(byteorder)}; expected b'little'")
    try:
        saved = _Unpickler(archive.read(f"{folder}/data.pkl")).load()
    except _Refused:
        raise
    except Exception as error:  # whatever a damaged or hostile pickle makes pickle (or a stand-in's call) raise
        raise _Refused(f"its data.pkl is not a pickled state_dict ({type(error).__name__}: {str(error)[:200]})") \
            from None
    states = list(saved) if type(saved) in (tuple, list) and 0 < len(saved) <= MAX_STATE_DICTS else [saved]
    arrays, loaded, budget = [{} for _ in states], {}, STATE_DICT_LIMITS.max_total_bytes
    for state, found in zip(states, arrays, strict=True):
        if not isinstance(state, dict):
            raise _Refused(f"its pickle holds {_what(state)}; a state_dict is a dict of tensors")
        if len(state) > MAX_KEYS:
            raise _Refused(f"it holds {len(state):,} tensors; a policy's state_dict holds at most {MAX_KEYS:,}")
        for key, tensor in state.items():
            if type(key) is not str:
                raise _Refused(f"it has a key of type {type(key).__name__}; a state_dict's keys are str")
            if not (isinstance(tensor, _Tensor) and isinstance(tensor.storage, _Storage)):
                raise _Refused(f"its entry {key!r} holds {_what(tensor)}; a state_dict holds only tensors")
            if tensor.storage.key not in loaded:
                loaded[tensor.storage.key] = _values(archive, folder, tensor.storage)
            found[key] = _array(key, tensor, loaded[tensor.storage.key], budget)
            budget -= found[key].size * max(found[key].itemsize, 4)
    return arrays


def _what(value) -> str:
    """What messages call a value the pickle made: "a dict", "an int", "a tensor", "torch.Size", ..."""
    if isinstance(value, _Tensor):
        return "a tensor" if isinstance(value.storage, _Storage) else f"a tensor on {_what(value.storage)}"
    if isinstance(value, _Global):
        return value.name
    name = {_StateDict: "dict", _Storage: "storage"}.get(type(value), type(value).__name__)
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _looks_pickled(source) -> bool:
    """Whether ``source`` begins like a pickle (protocol 2 or later), as torch.save's legacy format does."""
    try:
        if isinstance(source, bytes | bytearray):
            head = bytes(source[:2])
        else:
            with open(source, "rb") as file:
                head = file.read(2)
    except (OSError, TypeError, ValueError):
        return False
    return head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")


def read_state_dicts(source, name: str) -> list[dict[str, np.ndarray]]:
    """The state_dicts in a file torch.save wrote (its zip format), as numpy arrays by key in the file's order:
    one for ``torch.save(model.state_dict())``, several for a tuple of them (CleanRL's TD3 saves
    (actor, qf1, qf2)).

    `source`: a path or bytes. `name`: what messages call the file (e.g. "policy.pth in ppo_cartpole.zip").
    Anything wrong raises PolicyError, saying what was expected and what was found."""
    try:
        archive = open_archive(io.BytesIO(source) if isinstance(source, bytes | bytearray) else source,
                               STATE_DICT_LIMITS, name)
    except ArchiveError as error:
        if _looks_pickled(source):
            raise PolicyError(f"{name} is in torch.save's legacy format (a pickle, written with "
                              "_use_new_zipfile_serialization=False), which is not read; re-save it with torch.save's "
                              "default format (a zip).") from None
        raise PolicyError(str(error)) from None
    try:
        with archive:
            return _read(archive)
    except ArchiveError as error:
        raise PolicyError(str(error)) from None
    except _Refused as refusal:
        raise PolicyError(f"{name}: {refusal}") from None


def read_state_dict(source, name: str) -> dict[str, np.ndarray]:
    """The one state_dict in a file torch.save wrote (see ``read_state_dicts``)."""
    states = read_state_dicts(source, name)
    if len(states) != 1:
        raise PolicyError(f"{name} holds {len(states)} state_dicts; expected one.")
    return states[0]
