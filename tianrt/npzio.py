"""Bounded, validating reads of ``.npz`` / ``.npy`` files from untrusted paths.

Shared by model files (``tr.load``) and the command line's input files. Every check
happens before data is read or memory allocated:

- ``open_regular``: regular files only (a directory, FIFO, socket or device such as
  ``/dev/zero`` is refused without reading from it), at most a stated number of bytes;
- ``NpzArchive``: a zip archive that starts at byte 0; each member's ``.npy`` header
  (dtype, shape, order) is parsed first, its declared size checked against a cap and
  against the zip entry's size, and only then are exactly that many bytes read (the
  zip CRC is checked as the last byte arrives, never lazily later);
- ``read_npy``: the same for a bare ``.npy`` file.

Problems are raised through a caller-given ``fail(problem) -> Exception`` so each caller
raises its own error type (a ``TianrtError``) naming its own file. Limits: docs/limits.md.
"""
from __future__ import annotations

import io
import math
import os
import stat
import tokenize
import zipfile
import zlib
from typing import Callable

import numpy as np

from .errors import TianrtError

NPY_MAGIC = b"\x93NUMPY"
ZIP_LOCAL = b"PK\x03\x04"
ZIP_EMPTY = b"PK\x05\x06"
MAX_NPY_HEADER = 10_000          # bytes of an npy header dict (numpy's own default cap)
MAX_NDIM = 32                    # numpy's maximum number of dimensions
MAX_MEMBERS = 100_000            # zip members in one archive
NUMERIC_KINDS = "biufc"          # bool, signed, unsigned, float, complex: nothing else is read

Fail = Callable[[str], Exception]


def human(n: int) -> str:
    """``n`` bytes as a short human-readable size."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def open_regular(path, limit: int, fail: Fail):
    """Open ``path`` for binary reading if it is a regular file of at most ``limit`` bytes.

    Opened non-blocking and checked with ``fstat`` on the open descriptor, so a FIFO never
    blocks the open and a file swapped after a check is still the file checked."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise fail("no such file") from None
    except IsADirectoryError:
        raise fail("is a directory, not a file") from None
    except OSError as exc:
        raise fail(f"cannot open ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise fail("is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else
                    "a character device" if stat.S_ISCHR(st.st_mode) else
                    "a block device" if stat.S_ISBLK(st.st_mode) else
                    "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
            raise fail(f"is {kind}; only regular files are read (copy the data to a file first)")
        if st.st_size > limit:
            raise fail(f"is {human(st.st_size)}, more than the {human(limit)} this reader accepts")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    return f


def check_dtype(descr, fail: Fail, where: str) -> np.dtype:
    """A plain numeric dtype from an npy/JSON description, or ``fail``."""
    try:
        dt = descr if isinstance(descr, np.dtype) else np.dtype(descr)
    except (TypeError, ValueError, KeyError, SyntaxError) as exc:
        raise fail(f"{where}: dtype {descr!r} is not a numpy dtype ({exc})") from None
    if dt.hasobject:
        raise fail(f"{where}: dtype {dt} holds pickled Python objects, which are never loaded")
    if dt.kind not in NUMERIC_KINDS or dt.hasobject or dt.fields is not None or dt.subdtype is not None:
        raise fail(f"{where}: dtype {dt} is not a plain number type (bool, int, uint, float or complex)")
    return dt


def check_shape(shape, fail: Fail, where: str) -> tuple[int, ...]:
    """A shape: a list/tuple of at most 32 non-negative ints, or ``fail``."""
    if not isinstance(shape, (list, tuple)) or len(shape) > MAX_NDIM or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise fail(f"{where}: shape {_short(shape)} is not a list of at most {MAX_NDIM} non-negative integers")
    return tuple(shape)


def nbytes(dtype: np.dtype, shape) -> int:
    """Size in bytes, in Python integers (no overflow for absurd shapes)."""
    return math.prod(shape) * dtype.itemsize


def _short(v, n: int = 60) -> str:
    r = repr(v)
    return r if len(r) <= n else r[: n - 1] + "…"


def read_npy_header(f, fail: Fail, where: str) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """(dtype, shape, fortran_order, header length in bytes) from a stream at an npy header."""
    magic = f.read(8)
    if len(magic) < 8 or magic[:6] != NPY_MAGIC:
        raise fail(f"{where}: not an .npy array (starts with {bytes(magic[:8])!r}, expected {NPY_MAGIC!r})")
    version = (magic[6], magic[7])
    if version == (1, 0):
        read = np.lib.format.read_array_header_1_0
        hlen_size = 2
    elif version in ((2, 0), (3, 0)):
        read = np.lib.format.read_array_header_2_0
        hlen_size = 4
    else:
        raise fail(f"{where}: .npy format version {version[0]}.{version[1]} is not supported (1.0 to 3.0 are)")
    lenbytes = f.read(hlen_size)
    hlen = int.from_bytes(lenbytes, "little") if len(lenbytes) == hlen_size else -1
    if not 0 <= hlen <= MAX_NPY_HEADER:
        raise fail(f"{where}: .npy header length {hlen} is out of range (at most {MAX_NPY_HEADER} bytes)")
    body = f.read(hlen)
    if len(body) != hlen:
        raise fail(f"{where}: .npy header is truncated ({len(body)} of {hlen} bytes)")
    if version == (3, 0):  # utf-8 header: numpy's 2.0 reader only takes latin-1, so re-encode
        try:
            body = body.decode("utf-8").encode("latin1")
        except (UnicodeDecodeError, UnicodeEncodeError):
            raise fail(f"{where}: .npy 3.0 header is not plain text") from None
        lenbytes = len(body).to_bytes(4, "little")
    try:  # the header dict is literal_eval'd by numpy, never executed
        d, fortran, descr = read(io.BytesIO(lenbytes + body), max_header_size=MAX_NPY_HEADER)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, tokenize.TokenError) as exc:
        raise fail(f"{where}: unreadable .npy header ({type(exc).__name__}: {str(exc)[:200]})") from None
    dt = check_dtype(descr, fail, where)
    shape = check_shape(d, fail, where)
    return dt, shape, bool(fortran), 8 + hlen_size + hlen


def read_exact(f, dtype: np.dtype, shape, fortran: bool, fail: Fail, where: str) -> np.ndarray:
    """Read exactly the array's bytes from ``f`` into a fresh array, then check the stream ends."""
    n = nbytes(dtype, shape)
    buf = np.empty(n, np.uint8)
    view, got = memoryview(buf), 0
    while got < n:
        k = f.readinto(view[got:])
        if not k:
            raise fail(f"{where}: data ends after {got} of {n} bytes (truncated)")
        got += k
    if f.read(1):
        raise fail(f"{where}: more data than its header declares ({n} bytes)")
    a = buf.view(dtype)
    return a.reshape(shape[::-1]).T if fortran else a.reshape(shape)


class NpzArchive:
    """A zip archive of ``.npy`` members, read member by member with checks first.

    ``f`` is a seekable binary file object (from ``open_regular``); ``size`` its length."""

    def __init__(self, f, size: int, fail: Fail, kind: str = "an .npz archive", writer: str = "numpy.savez"):
        self.fail = fail
        head = f.read(4)
        f.seek(0)
        if head not in (ZIP_LOCAL, ZIP_EMPTY):
            if not zipfile.is_zipfile(f):
                raise fail(f"not {kind} (no zip archive found in {size} bytes; truncated, "
                           f"or not written by {writer})")
            raise fail(f"does not start with a zip archive (first bytes {head!r}): other data is "
                       "prepended to an archive; remove it, or re-save the file")
        try:
            self.zip = zipfile.ZipFile(f)
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise fail(f"corrupt zip archive ({type(exc).__name__}: {exc})") from None
        if len(infos) > MAX_MEMBERS:
            raise fail(f"has {len(infos)} zip members, more than {MAX_MEMBERS}")
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.filename.endswith(".npy"):
                self.members.setdefault(info.filename[:-4], info)

    @property
    def names(self) -> list[str]:
        return list(self.members)

    def _open(self, name: str):
        try:
            return self.zip.open(self.members[name])
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
            raise self.fail(f"member {name}.npy: corrupt ({type(exc).__name__}: {exc})") from None

    def header(self, name: str) -> tuple[np.dtype, tuple[int, ...], bool, int]:
        """The member's npy header (dtype, shape, fortran order, header bytes); no data read."""
        where = f"member {name}.npy"
        try:
            with self._open(name) as m:
                return read_npy_header(m, self.fail, where)
        except TianrtError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error, RuntimeError,
                NotImplementedError) as exc:
            raise self.fail(f"{where}: corrupt ({type(exc).__name__}: {exc})") from None

    def read(self, name: str, limit: int, dtype: np.dtype | None = None, shape=None) -> np.ndarray:
        """Member ``name`` as an array of at most ``limit`` bytes; if ``dtype``/``shape`` are
        given, the member's npy header must declare exactly them (checked before reading)."""
        where = f"member {name}.npy"
        info = self.members[name]
        try:
            with self._open(name) as m:
                dt, sh, fortran, hlen = read_npy_header(m, self.fail, where)
                if dtype is not None and (dt != dtype or dt.str != dtype.str):
                    raise self.fail(f"{where}: its .npy header says dtype {dt.str}, the file's header says {dtype.str}")
                if shape is not None and sh != tuple(shape):
                    raise self.fail(f"{where}: its .npy header says shape {list(sh)}, "
                                    f"the file's header says {list(shape)}")
                n = nbytes(dt, sh)
                if n > limit:
                    raise self.fail(f"{where}: declares {dt.str} {list(sh)} = {human(n)}, more than the "
                                    f"{human(limit)} allowed")
                if info.file_size != hlen + n:
                    raise self.fail(f"{where}: zip entry holds {info.file_size} bytes but its .npy header "
                                    f"declares {hlen + n} ({dt.str} {list(sh)})")
                return read_exact(m, dt, sh, fortran, self.fail, where)
        except TianrtError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, MemoryError, zlib.error, RuntimeError,
                NotImplementedError) as exc:
            raise self.fail(f"{where}: corrupt ({type(exc).__name__}: {exc})") from None


def read_npy(f, size: int, limit: int, fail: Fail) -> np.ndarray:
    """A bare ``.npy`` file (open binary stream of ``size`` bytes) of at most ``limit`` bytes of data."""
    dt, sh, fortran, hlen = read_npy_header(f, fail, "array")
    n = nbytes(dt, sh)
    if n > limit:
        raise fail(f"declares {dt.str} {list(sh)} = {human(n)}, more than the {human(limit)} allowed")
    if size != hlen + n:
        raise fail(f"is {size} bytes but its .npy header declares {hlen + n} ({dt.str} {list(sh)}; "
                   f"{'truncated' if size < hlen + n else 'trailing data'})")
    return read_exact(f, dt, sh, fortran, fail, "array")
