"""Reading zip archives from users without letting a small file take the server down.

Every archive the app reads (episode ``.npz`` files, ``.keras`` policies, PyTorch state_dicts) goes
through here. Before any member is read, the zip's central directory is checked against the reader's
``ArchiveLimits``: how many members, how many bytes they declare in all, and how far each is
compressed; and no member may be named outside the archive (an absolute name, or one with ``..``).
While a member is read, no more bytes are inflated than it declares, so a header that lies about a
member's size is caught too (zipfile stops at the declared size and the CRC no longer matches).
``.npy`` members are read header first: their shape and dtype are checked before the data is.

    with open_archive(path, EPISODE_LIMITS) as archive:
        meta = archive.read_npy("metadata.npy", check_header)   # check_header(shape, dtype) may refuse
        archive.verify()                                        # or inflate every member, keeping nothing
"""

from __future__ import annotations

import dataclasses
import io
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

MEGABYTE = 2**20
CHUNK_BYTES = MEGABYTE  # inflated per read: the most a reader holds beyond what it keeps


class ArchiveError(ValueError):
    """An archive refused before (or while) it is inflated; the message names the member, its
    declared and compressed sizes, and the limit it broke."""


@dataclasses.dataclass(frozen=True)
class ArchiveLimits:
    """What one kind of archive may hold.

    max_members: members in the central directory.
    max_total_bytes: the members' declared (inflated) sizes, added up.
    max_ratio: declared size / compressed size of any member larger than ``ratio_floor_bytes``
        (small members may compress as well as they like).
    """

    what: str  # what the archive is, as messages name it: "an episode file (a .npz written by this app)"
    max_members: int
    max_total_bytes: int
    max_ratio: float
    ratio_floor_bytes: int = MEGABYTE


# An episode file holds 8 arrays (np.savez stores them uncompressed: ratio 1). 1 GiB in all is
# more than the longest shipped episode needs by far (LunarLander: 1,000 steps, frames about
# 8 kB each as PNG, so about 10 MB), and far less than this 24 GB machine can hold for a few users.
EPISODE_LIMITS = ArchiveLimits("an episode file (a .npz written by this app)", max_members=16,
                               max_total_bytes=2**30, max_ratio=50)
# A policy is a .keras zip of three members (config, metadata, weights). The shipped ones are under
# 1 MB; a user's vision policy may reach a few hundred MB. Weights compress little: zeros do (a
# freshly initialised bias), so ratios are checked above 1 MB only.
POLICY_LIMITS = ArchiveLimits("a Keras archive (a .keras file written by model.save)", max_members=64,
                              max_total_bytes=512 * MEGABYTE, max_ratio=50)
# A PyTorch state_dict (torch.save's zip: data.pkl and one member per tensor storage). A policy's is
# a few MB at most; 512 MB leaves room for a vision network. Zeros compress (ratios checked above 1 MB).
STATE_DICT_LIMITS = ArchiveLimits("a PyTorch state_dict (a file written by torch.save)", max_members=4096,
                                  max_total_bytes=512 * MEGABYTE, max_ratio=50)


def _size(n: int) -> str:
    return f"{n:,} bytes" if n < MEGABYTE else f"{n / MEGABYTE:,.1f} MB"


class CheckedArchive:
    """A zip archive whose central directory passed ``limits``; read members with ``read_npy``, or
    ``verify`` them all for a reader of its own."""

    def __init__(self, source, limits: ArchiveLimits, name: str):
        self.name, self.limits = name, limits
        try:
            self.zip = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            raise ArchiveError(f"{name} is not {limits.what}: {error}") from None
        try:
            self._check_directory()
        except ArchiveError:
            self.zip.close()
            raise
        self.members = {info.filename: info for info in self.zip.infolist()}

    def _check_directory(self) -> None:
        infos, limits = self.zip.infolist(), self.limits
        if len(infos) > limits.max_members:
            raise ArchiveError(f"{self.name} holds {len(infos):,} members; {limits.what} holds at most "
                               f"{limits.max_members}.")
        total = 0
        for info in infos:
            _check_name(info.orig_filename, self.name)
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ArchiveError(f"{self.name}: member {info.filename!r} is compressed with method "
                                   f"{info.compress_type}; {limits.what} is stored or deflated (methods 0 and 8).")
            total += info.file_size
            if total > limits.max_total_bytes:
                raise ArchiveError(
                    f"{self.name}: with member {info.filename!r} ({_size(info.file_size)} declared, "
                    f"{_size(info.compress_size)} compressed) its members declare {_size(total)} or more; "
                    f"{limits.what} may declare at most {_size(limits.max_total_bytes)}.")
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > limits.ratio_floor_bytes and ratio > limits.max_ratio:
                raise ArchiveError(
                    f"{self.name}: member {info.filename!r} declares {_size(info.file_size)} from "
                    f"{_size(info.compress_size)} compressed, a ratio of {ratio:,.0f}; the members of {limits.what} "
                    f"are compressed at most {limits.max_ratio:g} times.")

    def info(self, member: str) -> zipfile.ZipInfo:
        if member not in self.members:
            raise ArchiveError(f"{self.name} has no member {member!r}; it holds {sorted(self.members)}.")
        return self.members[member]

    def read_npy(self, member: str, check_header) -> np.ndarray:
        """A ``.npy`` member as an array. ``check_header(shape, dtype)`` sees the header before any
        data is read and raises to refuse it; object arrays (pickles) are always refused."""
        info = self.info(member)
        with self._open(member) as stream:
            try:
                version = np.lib.format.read_magic(stream)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                               (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                if read_header is None:
                    raise ValueError(f"unknown .npy version {version}")
                shape, fortran, dtype = read_header(stream)
            except (zipfile.BadZipFile, zlib.error) as error:
                raise ArchiveError(f"{self.name}: member {member!r} is damaged or lies about its size: "
                                   f"{error}") from None
            except (ValueError, OSError, EOFError, SyntaxError) as error:
                raise ArchiveError(f"{self.name}: member {member!r} is not a .npy array: {error}") from None
            if dtype.hasobject:
                raise ArchiveError(f"{self.name}: member {member!r} holds Python objects, which are never unpickled.")
            check_header(shape, dtype)
            n_bytes = math.prod(shape) * dtype.itemsize
            if n_bytes > info.file_size:
                raise ArchiveError(f"{self.name}: member {member!r} announces {_size(n_bytes)} of data "
                                   f"but declares only {_size(info.file_size)} in all.")
            data = _read_exactly(stream, n_bytes, self.name, member)
        array = np.frombuffer(data, dtype=dtype)
        return (array.reshape(shape[::-1]).T if fortran else array.reshape(shape)).copy()

    def read(self, member: str) -> bytes:
        """A member's bytes, inflated a chunk at a time: exactly the bytes it declares, with its CRC."""
        info = self.info(member)
        with self._open(member) as stream:
            return _read_exactly(stream, info.file_size, self.name, member)

    def verify(self) -> None:
        """Inflate every member a chunk at a time, keeping nothing: each must give exactly the bytes it
        declares, with its CRC. For archives handed to a reader of its own (Keras)."""
        for member, info in self.members.items():
            with self._open(member) as stream:
                _read_exactly(stream, info.file_size, self.name, member, keep=False)

    def _open(self, member: str):
        try:
            return self.zip.open(member)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError) as error:
            raise ArchiveError(f"{self.name}: member {member!r} cannot be read: {error}") from None

    def close(self) -> None:
        self.zip.close()

    def __enter__(self) -> CheckedArchive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_name(member: str, name: str) -> None:
    """Refuse a member name that is absolute or climbs out of the archive (``..``), with ``/`` or ``\\``
    as the separator, or that holds a NUL (zipfile cuts the name there). No archive the app reads needs one."""
    parts = member.replace("\\", "/").split("/")
    if "\0" in member or member.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts:
        raise ArchiveError(f"{name}: member name {member!r} is absolute, climbs out with '..' or holds a NUL; "
                           "an archive's members are named inside it (like 'data/0' or 'weights.npy').")


def _read_exactly(stream, n_bytes: int, name: str, member: str, keep: bool = True) -> bytes:
    """``n_bytes`` from ``stream``, inflated a chunk at a time (``keep=False`` only checks them).

    zipfile inflates no further than a read asks for, stops at the member's declared size and checks
    its CRC at the end, so a header that understates a member fails here with at most a chunk held.
    (One unbounded ``read()`` of such a member would inflate all of it first.)"""
    buffer, seen = io.BytesIO(), 0
    try:
        while seen < n_bytes:
            chunk = stream.read(min(CHUNK_BYTES, n_bytes - seen))
            if not chunk:
                break
            seen += len(chunk)
            if keep:
                buffer.write(chunk)
        stream.read(1)  # at the declared end: zipfile checks the CRC here
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:  # deflate's and zipfile's own
        raise ArchiveError(f"{name}: member {member!r} is damaged or lies about its size: {error}") from None
    if seen != n_bytes:
        raise ArchiveError(f"{name}: member {member!r} ended after {_size(seen)} of {_size(n_bytes)}.")
    return buffer.getvalue()


def open_archive(source, limits: ArchiveLimits, name: str | None = None) -> CheckedArchive:
    """``source`` (a path or a binary file object) as a CheckedArchive, or ArchiveError."""
    name = name or Path(getattr(source, "name", None) or str(source)).name  # a file object: pass its name
    return CheckedArchive(source, limits, name)
