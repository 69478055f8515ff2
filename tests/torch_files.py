"""PyTorch's file format written without torch, for tests of the reader (``torch_state``): the pickle
with its opcodes by hand (a Pickler cannot name torch's globals without torch), the zip as torch
lays it out."""

import io
import pickle
import struct
import zipfile


# Pickle opcodes (see pickletools), enough for what torch.save writes with protocol 2.
def op_global(qualified: str) -> bytes:
    module, name = qualified.rsplit(".", 1)
    return b"c" + f"{module}\n{name}\n".encode()  # GLOBAL


def op_str(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE


def op_int(n: int) -> bytes:
    data = pickle.encode_long(n)
    return b"\x8a" + bytes([len(data)]) + data  # LONG1: any size, any sign


def op_ints(values) -> bytes:
    return b"(" + b"".join(op_int(n) for n in values) + b"t"  # MARK ... TUPLE


ORDERED_DICT = op_global("collections.OrderedDict") + b")R"  # OrderedDict(): GLOBAL, EMPTY_TUPLE, REDUCE


def tensor(key: str, numel: int, offset: int, size, stride, storage="torch.FloatStorage", extra=b"") -> bytes:
    """_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()), the storage a persistent id."""
    storage_id = b"(" + op_str("storage") + op_global(storage) + op_str(key) + op_str("cpu") + op_int(numel) + b"t"
    return (op_global("torch._utils._rebuild_tensor_v2") + b"(" + storage_id + b"Q" + op_int(offset)
            + op_ints(size) + op_ints(stride) + b"\x89" + ORDERED_DICT + extra + b"tR")  # BINPERSID, NEWFALSE


def parameter(data: bytes) -> bytes:
    return op_global("torch._utils._rebuild_parameter") + b"(" + data + b"\x88" + ORDERED_DICT + b"tR"  # NEWTRUE


METADATA = (b"}" + op_str("_metadata") + ORDERED_DICT + b"(" + op_str("") + b"}" + op_str("version") + op_int(1)
            + b"su" + b"s" + b"b")  # BUILD with {'_metadata': OrderedDict({'': {'version': 1}})}, as torch does


def state_dict(entries: dict, metadata: bytes = METADATA) -> bytes:
    """OrderedDict(entries) (key -> opcodes of its value), then ``metadata``."""
    items = b"".join(op_str(key) + value for key, value in entries.items())
    return b"\x80\x02" + ORDERED_DICT + b"(" + items + b"u" + metadata + b"."  # PROTO 2, SETITEMS, STOP


def torch_file(pickled: bytes, storages: dict, folder: str = "archive", byteorder: bytes | None = b"little") -> bytes:
    """A zip laid out as torch.save writes it (members stored, in its order)."""
    members = {"data.pkl": pickled, ".format_version": b"1", ".storage_alignment": b"64", "byteorder": byteorder,
               **{f"data/{key}": data for key, data in storages.items()}, "version": b"3\n",
               ".data/serialization_id": b"0" * 40}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, data in members.items():
            if data is not None:
                archive.writestr(f"{folder}/{member}", data)
    return buffer.getvalue()


def state_dict_file(arrays: dict) -> bytes:
    """torch.save of a state_dict of float32 arrays (name -> np.ndarray), each in a storage of its own."""
    import numpy as np

    entries, storages = {}, {}
    for index, (name, array) in enumerate(arrays.items()):
        array = np.ascontiguousarray(array, "<f4")
        strides = tuple(int(np.prod(array.shape[i + 1:])) for i in range(array.ndim))
        entries[name] = tensor(str(index), array.size, 0, array.shape, strides)
        storages[str(index)] = array.tobytes()
    return torch_file(state_dict(entries), storages)
