"""read_state_dict reads torch.save's zip format without torch, and refuses, by name and without
running anything, every file that is not a plain state_dict of tensors.

The files are written here: the pickle with its opcodes by hand (a Pickler cannot name torch's
globals without torch), the zip as torch lays it out; and one file that torch 2.13 wrote itself."""

import base64
import io
import pickle
import re
import zipfile
import zlib

import numpy as np
import pytest
from hostile_archives import bomb, understate_size
from torch_files import (
    ORDERED_DICT,
    op_global,
    op_int,
    op_ints,
    op_str,
    parameter,
    state_dict,
    tensor,
    torch_file,
)

from attribution.rl.errors import PolicyError
from attribution.rl.formats.torch_state import read_state_dict

NAME = "policy.pth in ppo.zip"

# torch.save of nn.Linear(3, 2).state_dict(keep_vars=True) (weight = arange(6).reshape(2, 3) / 4,
# bias = [-1, 2]: Parameters, with _metadata) plus steps = arange(10)[7:9], first = arange(10)[:2]
# (one int64 storage) and t = (arange(6.).reshape(2, 3) - 2).t(), by torch 2.13; zlib, base64.
REAL = zlib.decompress(base64.b64decode("""
eNqlVd1v21QUv4kbJ3U/2KClLYWODQbZVxrbaT6GthYLmQdPIjNCinggcpO72MJNeuybTSBNqoTawSsvPAF7gL8BXhD8C3tBICGhaUPAE38Cu9f3
prPddlG3ozjHie/vd37n3nOOm5Y0gVChgA7YDJpHAXb81a5DnNL2x75pnEQfpm0n2+kMfB93iDfoh8p7QRcHuPuO1yEKoHM2ZIotmZLdwl7PJZDt
kEHQcUvtIfH8UGkHeHPo+d32thM4W5jgQAHpiCUE98NB0L6pKTBRLLbylDSkK50ehhyHKKY/cMj7/E8F5FaGrilDviVR39keQsGSCUxet5CVtaQ9
UCzJyuzB1BcuEzpNYMaG2c+jH8/dgRM2nGzRrUGbnhPC867k0rBuzuW0KrzgFqwsgbmIbhfmrcwuvMipFggs2rDEqV66A8s2vNzKRYLxdgivcCYh
+tqg39vXvBKRa3CKkisEXr1u5Rn5aUZ+hpO/RuB1G85GfDe8ICTwhlC24grYm0JTkcHOcdh5AhdsuBjxE7iUSEaHkhvtzSoDSlZ2D8pWhm2RysEa
Ad2GyvA2rLUmKaBNz8phZQHV6HmtxQoG6rehER3MTRyEtBzgspUJw3Cz1LTyhZ9O/+OfzSLEruaRRTeHlnjRlW4Mgi2HtAWVacwfrD1mKuP+4b8/
PmOJsOto7gV0WXCLwmk7vtfrb+E+MY3q4fRjrVphAtZvwb80L5R9ooBZZHABm58QPGCdYhpXnzLuyHyPEB8zDbtXHiyxVpOfqGEKvf24q1fLpnHl
2QRw1p2r9GsdoQ167dDr7jpTZP/196lF+mBxjKLVmCLVNC6gY8Xf+ZmSbLB4D+d//5YFKIyJtx6Lp5nGW+iZ8+elh0QFMJOEnxA+J7wsfF74kcBJ
4Vke3z3c/ajJ7sfkUYvloZuGjp5O/y9iDxE/O7RBP9F+fvX/n++OP79pVOI69lv1/DGE6AqLdO+b3gfj+2cZrYkGjlIOceDRDv7UYa+ettc1DfX4
O6CWa7V6VatpjVqjUV+rqFVtrUytUm/U6jVVa6i63qjoUZd/f/9Ht0h1FCOVmeioRzrj423mgPLEezQNjU+vuQRsmEWHTsM0Q3z8LCQY7u0zHJh5
aZL4/JhNkNgSSs2tNDbe6VMJ7K8Sis+bNDDeskmgOxEHqmlgvEeSwN8SQC0NjBd1Eng3FwfqaWC8RqcTwKKMEh2QRsbrZjmB/HKEPLyim5YsXxRL
V6RL+zAl5bGYOvX8aIjI0d3Xk4+HU9PKyRyjROv52kedYR6s
"""))


def f32(*values) -> bytes:
    return np.array(values, "<f4").tobytes()


def refused(data, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        read_state_dict(data, NAME)


def test_a_file_torch_wrote_reads_back_exactly():
    arrays = read_state_dict(REAL, "real.pth")
    assert list(arrays) == ["weight", "bias", "steps", "first", "t"]
    np.testing.assert_array_equal(arrays["weight"], np.arange(6, dtype=np.float32).reshape(2, 3) / 4)
    np.testing.assert_array_equal(arrays["bias"], np.array([-1, 2], np.float32))
    np.testing.assert_array_equal(arrays["steps"], np.array([7, 8]))
    np.testing.assert_array_equal(arrays["first"], np.array([0, 1]))
    np.testing.assert_array_equal(arrays["t"], (np.arange(6, dtype=np.float32).reshape(2, 3) - 2).T)
    assert [a.dtype for a in arrays.values()] == [np.float32] * 2 + [np.int64] * 2 + [np.float32]


def test_tensors_views_and_parameters_read_back_exactly(tmp_path):
    storages = {"0": f32(*range(6)), "1": np.array([-3, 2**40], "<i8").tobytes(), "2": f32(*range(10)),
                "3": f32(2.5), "4": b""}
    data = torch_file(state_dict({
        "weight": parameter(tensor("0", 6, 0, (2, 3), (3, 1))),
        "steps": tensor("1", 2, 0, (2,), (1,), storage="torch.LongStorage"),
        "transposed": tensor("0", 6, 0, (3, 2), (1, 3)),
        "head": tensor("2", 10, 1, (2, 2), (2, 1)),  # two views of one storage, at offsets
        "tail": tensor("2", 10, 7, (3,), (1,)),
        "scalar": tensor("3", 1, 0, (), ()),
        "empty": tensor("4", 0, 0, (0, 4), (4, 1)),
        "single": tensor("3", 1, 0, (1, 1), (0, 0)),  # stride 0 on axes of one element: nothing repeats
    }), storages)
    (tmp_path / "policy.pth").write_bytes(data)
    for source in (data, tmp_path / "policy.pth", str(tmp_path / "policy.pth")):
        arrays = read_state_dict(source, NAME)
        assert list(arrays) == ["weight", "steps", "transposed", "head", "tail", "scalar", "empty", "single"]
        np.testing.assert_array_equal(arrays["weight"], np.arange(6, dtype=np.float32).reshape(2, 3))
        assert arrays["steps"].dtype == np.int64 and arrays["steps"].tolist() == [-3, 2**40]
        np.testing.assert_array_equal(arrays["transposed"], arrays["weight"].T)
        assert arrays["head"].tolist() == [[1, 2], [3, 4]] and arrays["tail"].tolist() == [7, 8, 9]
        assert arrays["scalar"].shape == () and arrays["scalar"] == 2.5
        assert arrays["empty"].shape == (0, 4) and arrays["empty"].dtype == np.float32
        assert arrays["single"].tolist() == [[2.5]]
        for array in arrays.values():  # each its own contiguous, writable copy
            assert array.flags.c_contiguous and array.flags.writeable and array.base is None
    arrays["head"][0, 0] = 100
    assert arrays["tail"][0] == 7


def test_half_bfloat16_bool_and_small_ints():
    bfloat16 = (np.array([1.5, -2.0, 3.25], "<f4").view("<u4") >> 16).astype("<u2").tobytes()
    storages = {"h": np.array([0.5, -1], "<f2").tobytes(), "b": bfloat16, "o": bytes([1, 0, 2]),
                "i": np.array([-1, 7], "<i4").tobytes(), "c": bytes([255, 1]), "u": bytes([255, 1])}
    arrays = read_state_dict(torch_file(state_dict({
        "half": tensor("h", 2, 0, (2,), (1,), storage="torch.HalfStorage"),
        "bf16": tensor("b", 3, 0, (3,), (1,), storage="torch.BFloat16Storage"),
        "mask": tensor("o", 3, 0, (3,), (1,), storage="torch.BoolStorage"),
        "int": tensor("i", 2, 0, (2,), (1,), storage="torch.IntStorage"),
        "char": tensor("c", 2, 0, (2,), (1,), storage="torch.CharStorage"),
        "byte": tensor("u", 2, 0, (2,), (1,), storage="torch.ByteStorage"),
    }, metadata=b""), storages), NAME)
    assert arrays["half"].dtype == np.float16 and arrays["half"].tolist() == [0.5, -1]
    assert arrays["bf16"].dtype == np.float32 and arrays["bf16"].tolist() == [1.5, -2.0, 3.25]
    assert arrays["mask"].dtype == np.bool_ and arrays["mask"].tolist() == [True, False, True]
    assert arrays["int"].dtype == np.int32 and arrays["int"].tolist() == [-1, 7]
    assert arrays["char"].tolist() == [-1, 1] and arrays["byte"].tolist() == [255, 1]


GOOD_STORAGES = {"0": f32(*range(6))}


def good(entries=None, storages=None, **layout) -> bytes:
    """A good file, or one with these entries (key -> opcodes) or storages (key -> bytes)."""
    pickled = state_dict(entries or {"w": tensor("0", 6, 0, (2, 3), (3, 1))})
    return torch_file(pickled, storages or GOOD_STORAGES, **layout)


def payloads(marker):
    """global -> the opcodes of its call, which would create the file ``marker`` were it run."""
    shell = op_str(f"touch {marker}")
    python = op_str(f"open({str(marker)!r}, 'w').close()")
    argv = b"](" + op_str("touch") + op_str(str(marker)) + b"e"  # EMPTY_LIST, MARK, APPENDS: ["touch", marker]
    return {"os.system": shell, "posix.system": shell, "builtins.eval": python, "builtins.exec": python,
            "subprocess.Popen": argv, "builtins.getattr": op_str("os") + op_str("system")}


@pytest.mark.parametrize("found", ["os.system", "posix.system", "builtins.eval", "builtins.exec", "subprocess.Popen",
                                   "builtins.getattr"])
def test_a_pickle_that_calls_anything_else_is_refused_by_name_and_nothing_runs(tmp_path, found):
    call = op_global(found) + b"(" + payloads(tmp_path / "ran")[found] + b"tR"
    message = rf"^policy.pth in ppo.zip: its pickle asks for {found}; a state_dict holds only tensors, so it is "
    for pickled in (b"\x80\x02" + call + b".",  # on its own
                    state_dict({"w": tensor("0", 6, 0, (2, 3), (3, 1)), "evil": call}),  # as a value, after a tensor
                    state_dict({"w": tensor("0", 6, 0, (2, 3), (3, 1), extra=call)})):  # as _rebuild_tensor_v2's 7th
        refused(torch_file(pickled, GOOD_STORAGES), message)
    assert list(tmp_path.iterdir()) == []


def test_the_hostile_pickles_do_run_where_pickle_is_trusted(tmp_path):
    """The control: pickle.loads runs the same bytes, and the file appears."""
    pickle.loads(b"\x80\x02" + op_global("builtins.exec") + b"(" + payloads(tmp_path / "ran")["builtins.exec"] + b"tR.")
    assert (tmp_path / "ran").exists()


def test_torch_size_may_give_a_size():
    size = op_global("torch.Size") + b"(" + op_ints((3, 2)) + b"tR"  # torch.Size((3, 2))
    sized = tensor("0", 6, 0, (), (1, 3)).replace(op_ints(()), size)
    np.testing.assert_array_equal(read_state_dict(torch_file(state_dict({"t": sized}), GOOD_STORAGES), NAME)["t"],
                                  np.arange(6, dtype=np.float32).reshape(2, 3).T)


@pytest.mark.parametrize("storage, message", [
    ("torch.cuda.FloatStorage", r"asks for the storage class torch.cuda.FloatStorage; expected one of "
                                r"torch.DoubleStorage, torch.FloatStorage"),
    ("torch.NoSuchStorage", r"asks for the storage class torch.NoSuchStorage"),
    ("torch.Size", r"a storage's class is torch.Size; expected one of torch.DoubleStorage"),
])
def test_only_the_storage_classes_of_plain_dtypes_are_read(storage, message):
    refused(good({"w": tensor("0", 6, 0, (2, 3), (3, 1), storage=storage)}), message)


@pytest.mark.parametrize("data, message", [
    (bytes(400), r"^policy.pth in ppo.zip: storage 'data/0' holds 400 bytes; the pickle says 128 float32 values "
                 r"\(512 bytes\).$"),
    (bytes(516), r"storage 'data/0' holds 516 bytes; the pickle says 128 float32 values \(512 bytes\)"),
])
def test_a_storage_must_hold_exactly_the_bytes_its_pickle_claims(data, message):
    refused(good({"w": tensor("0", 128, 0, (128,), (1,))}, storages={"0": data}), message)


def test_a_storage_the_pickle_refers_to_must_be_in_the_file():
    refused(good({"w": tensor("7", 6, 0, (6,), (1,))}),
            r"storage 'data/7' is not in the file, though the pickle refers to it")


@pytest.mark.parametrize("offset, size, stride, message", [
    (1, (2, 3), (3, 1), r"tensor 'w' \(offset 1, size \(2, 3\), stride \(3, 1\)\) reaches element 6 of storage "
                        r"'data/0', which holds 6 values"),
    (0, (3,), (3,), r"reaches element 6 of storage 'data/0'"),
    (0, (2, 3), (1, 3), r"reaches element 7"),
    (6, (1,), (1,), r"reaches element 6"),
    (0, (3,), (-1,), r"has offset 0, size \(3,\) and stride \(-1,\); expected integers >= 0"),
    (-1, (1,), (1,), r"has offset -1"),
    (0, (-2,), (1,), r"size \(-2,\)"),
    (0, (2, 3), (1,), r"at most 64 sizes and as many strides"),
    (0, (2**70,), (1,), r"size \(1180591620717411303424,\)"),
    (0, (2**20, 2**20), (1, 1), r"would take 4,398,046,511,104 bytes, and a state_dict may take at most 536,870,912"),
    (0, (2**14, 2**14), (0, 0), r"repeats its values along an axis"),  # a 4-byte storage as 1 GB: expand()
])
def test_a_view_must_lie_inside_its_storage(offset, size, stride, message):
    refused(good({"w": tensor("0", 6, offset, size, stride)}), message)


@pytest.mark.parametrize("pickled, message", [
    (state_dict({"step": op_int(3)}), r"its entry 'step' holds an int; a state_dict holds only tensors"),
    (state_dict({"optimizer": b"}"}), r"its entry 'optimizer' holds a dict; a state_dict holds only tensors"),
    (state_dict({"name": op_str("ppo")}), r"its entry 'name' holds a str"),
    (state_dict({"cls": op_global("torch.FloatStorage")}), r"its entry 'cls' holds torch.FloatStorage"),
    (b"\x80\x02" + ORDERED_DICT + op_int(1) + tensor("0", 6, 0, (6,), (1,)) + b"s.",
     r"it has a key of type int; a state_dict's keys are str"),
    (b"\x80\x02" + tensor("0", 6, 0, (6,), (1,)) + b".", r"its pickle holds a tensor; a state_dict is a dict of"),
    (b"\x80\x02](" + tensor("0", 6, 0, (6,), (1,)) + b"e.", r"its pickle holds a tensor; a state_dict is a dict"),
    (state_dict({}, metadata=b"}" + op_str("update") + op_int(1) + b"sb"),
     r"its pickle sets a dict's state to {'update': 1}; a state_dict sets only _metadata"),
    (b"\x80\x02" + op_global("torch._utils._rebuild_tensor_v2") + b"}" + op_str("make") + op_int(1) + b"sb.",
     r"not a pickled state_dict"),  # BUILD on a stand-in
    (b"\x80\x02" + op_global("torch._utils._rebuild_tensor_v2") + b")R.",
     r"not a pickled state_dict \(TypeError: .*missing 6 required"),
    (b"\x80\x02" + op_global("torch.FloatStorage") + b")R.", r"its pickle calls torch.FloatStorage"),
    (state_dict({"w": tensor("0", 6, 0, (6,), (1,), extra=b"}" + op_str("neg") + b"\x88s")}),
     r"a tensor carries the metadata {'neg': True}; only plain tensors are read"),
    (state_dict({"w": tensor("0", 6, 0, (6,), (1,)),
                 "d": tensor("0", 3, 0, (3,), (1,), storage="torch.DoubleStorage")}),
     r"storage 'data/0' is claimed as 6 float32 values and as 3 float64 values"),
    (b"\x80\x02" + op_str("module") + b"Q.", r"the persistent id 'module'; expected \('storage', storage class"),
    (b"\x80\x02(" + op_str("storage") + op_global("torch.FloatStorage") + op_str("0") + op_str("cpu") + op_int(-1)
     + b"tQ.", r"key, location and number of values are '0', 'cpu' and -1; expected two strings and an integer"),
    (state_dict({"w": tensor("0", 6, 0, (6,), (1,))})[:-30], r"its data.pkl is not a pickled state_dict"),
    (b"\x80\x05\x95" + bytes(8) + b"\x97.", r"its data.pkl is not a pickled state_dict"),  # NEXT_BUFFER
])
def test_a_pickle_of_anything_but_a_dict_of_tensors_is_refused(pickled, message):
    refused(torch_file(pickled, GOOD_STORAGES), message)


def test_the_layout_and_byte_order_are_checked():
    refused(good(byteorder=b"big"), r"its byteorder is b'big'; expected b'little'")
    assert list(read_state_dict(good(byteorder=None), NAME)) == ["w"]  # files before torch 1.10 have none
    two_folders = io.BytesIO()
    with zipfile.ZipFile(two_folders, "w") as archive:
        archive.writestr("a/data.pkl", state_dict({}))
        archive.writestr("b/data/0", b"")
    refused(two_folders.getvalue(), r"its members are \['a/data.pkl', 'b/data/0'\]; a file written by torch.save "
                                    r"holds one folder with data.pkl in it")


@pytest.mark.parametrize("member", ["archive/../../evil.py", "../evil.py", "/etc/evil", "archive/..\\..\\evil",
                                    "\\evil", "C:/evil", "archive/evil\0.py"])
def test_a_member_named_outside_the_archive_is_refused(tmp_path, member):
    buffer = io.BytesIO(good())
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(member.replace("\0", "_"), b"x")  # zipfile cuts a name at a NUL: patched in below
    data = buffer.getvalue().replace(member.replace("\0", "_").encode(), member.encode())
    refused(data, rf"member name {re.escape(repr(member))} is absolute, climbs out with '..' or holds a NUL")
    assert list(tmp_path.iterdir()) == []


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    bomb(good({"w": tensor("0", 16 * 2**20, 0, (4,), (1,))}), tmp_path / "bomb.pth", "archive/data/0", 64 * 2**20)
    assert (tmp_path / "bomb.pth").stat().st_size < 2**20
    refused(tmp_path / "bomb.pth", r"member 'archive/data/0' declares 64.0 MB from .* compressed, a ratio of "
                                   r"[\d,]+; the members of a PyTorch state_dict \(a file written by torch.save\) "
                                   r"are compressed at most 50 times")
    # a member that says it holds the 24 bytes its pickle claims, and inflates to 8 MB
    bomb(good(), tmp_path / "lying.pth", "archive/data/0", 8 * 2**20)
    understate_size(tmp_path / "lying.pth", "archive/data/0", 24)
    refused(tmp_path / "lying.pth", r"member 'archive/data/0' is damaged or lies about its size")


def test_files_that_are_not_torch_zips_are_refused():
    refused(REAL[:len(REAL) // 2], r"^policy.pth in ppo.zip is not a PyTorch state_dict \(a file written by "
                                   r"torch.save\): File is not a zip file")
    refused(b"junk " * 100, r"is not a PyTorch state_dict")
    refused(b"", r"is not a PyTorch state_dict")
    legacy = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)  # torch's magic
    refused(legacy, r"^policy.pth in ppo.zip is in torch.save's legacy format .*; re-save it with torch.save's default "
                    r"format \(a zip\).$")
