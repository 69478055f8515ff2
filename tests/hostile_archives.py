"""Hostile archives for the tests, written quickly by streaming zeros into a zip member, and a
child process that loads one under a memory limit and says how long it took and how much it grew.

    python tests/hostile_archives.py episode|policy FILE    # prints JSON: seconds, extra_mb, error
"""

import io
import json
import os
import resource
import struct
import sys
import time
import zipfile

import numpy as np

ZEROS = bytes(2**24)


def copy_members(source: bytes, target: zipfile.ZipFile, skip=()) -> None:
    with zipfile.ZipFile(io.BytesIO(source)) as original:
        for info in original.infolist():
            if info.filename not in skip:
                target.writestr(info, original.read(info))


def stream_zeros(target: zipfile.ZipFile, member: str, n_bytes: int, header: bytes = b"") -> None:
    """``header`` then zeros up to ``n_bytes`` in all, deflated: 2 GiB make about 2 MB."""
    with target.open(member, "w", force_zip64=n_bytes > 2**31 - 1) as stream:  # the archive's compression
        stream.write(header)
        left = n_bytes - len(header)
        while left > 0:
            stream.write(ZEROS[:min(left, len(ZEROS))])
            left -= len(ZEROS)


def npy_header(shape, dtype="<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_2_0(buffer, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def bomb(good: bytes, path, member: str, n_bytes: int, header: bytes = b"") -> None:
    """``good``'s archive with ``member`` replaced by ``n_bytes`` that deflate to almost nothing."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        copy_members(good, target, skip=(member,))
        stream_zeros(target, member, n_bytes, header)


def understate_size(path, member: str, declared: int) -> None:
    """Make the central directory (and the local header) say that ``member`` inflates to ``declared`` bytes."""
    data = bytearray(open(path, "rb").read())
    name = member.encode()
    for signature, size_at, name_at in ((b"PK\x01\x02", 24, 46), (b"PK\x03\x04", 22, 30)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            if data[start + name_at:start + name_at + len(name)] == name:
                data[start + size_at:start + size_at + 4] = struct.pack("<I", declared)
            start += 4
    open(path, "wb").write(bytes(data))


def status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status ("VmRSS", "VmHWM": its peak, "VmSize")."""
    for line in open("/proc/self/status"):
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> None:
    """Start VmHWM (the peak resident memory) again from the memory held now (Linux's clear_refs)."""
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")


def main(kind: str, path: str) -> None:
    """Load ``path`` as ``kind`` after warming the loader up, with the address space capped 1 GiB above
    what the process holds then, so a full inflation fails instead of filling the machine."""
    if kind == "episode":
        from attribution.rl.episodes import EpisodeError, load_episode

        def load(p):
            return load_episode(p)

        refused = EpisodeError
    else:
        from attribution.rl.policies import PolicyError, load_policy_file

        def load(p):
            return load_policy_file(p, "CartPole-v1")

        refused = PolicyError
    warm_up = os.environ.get("WARM_UP")
    if warm_up:
        load(warm_up)
    resource.setrlimit(resource.RLIMIT_AS, (int(status_mb("VmSize") + 1024) * 2**20, resource.RLIM_INFINITY))
    reset_peak()
    before, started = status_mb("VmRSS"), time.perf_counter()
    try:
        load(path)
        error = None
    except refused as found:
        error = str(found)
    except MemoryError:
        error = "MemoryError"
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "extra_mb": status_mb("VmHWM") - before, "error": error}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
