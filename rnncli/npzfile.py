"""Writing and loading files safely: atomic writes that never replace a device node, and
.npz loads that never unpickle.

Metadata travels as JSON text in a 0-d unicode array, which NumPy stores without pickle.
"""

import io
import json
import math
import mmap
import os
import stat
import tempfile
import zipfile

import numpy as np

from rnncli.errors import RnncliError


def _target(path):
    """What a write to `path` really changes: a symlink's final target (the link itself stays),
    and whether that is a regular file (or will be one: a new name)."""
    real = os.path.realpath(path)
    try:
        regular = stat.S_ISREG(os.stat(real).st_mode)
    except FileNotFoundError:
        regular = True
    return real, regular


def _mode_for(real):
    """The permissions a new version of `real` gets: those of the file it replaces, or for a
    new file what the umask allows (as open() would give it)."""
    try:
        return stat.S_IMODE(os.stat(real).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def check_writable(path):
    """Fail before a long run, not after it, if `path` cannot be written: try it, as root
    passes permission checks that a real write may still fail (read-only mounts, /proc)."""
    if os.path.isdir(path):
        raise RnncliError(f"{path}: is a directory, expected a file name")
    real, regular = _target(path)
    if not regular:  # a device or a FIFO is written in place; opening a FIFO here would block
        return
    folder = os.path.dirname(real) or "."
    if not os.path.isdir(folder):
        raise RnncliError(f"{path}: folder {os.path.dirname(os.path.abspath(path))} does not exist")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise RnncliError(f"{path}: folder {folder} is not writable ({e.strerror})") from None


def write_file(path, write):
    """Call write(binary file) to produce `path`'s new content, safely.

    A regular file (or a new name) is written atomically: a temporary file in the same folder,
    flush and fsync, then rename over the target, so a crash at any moment leaves either the
    old file or the new one, never a torn one. A symlink is followed and its target replaced
    (the link survives). Anything else that exists (a device such as /dev/null, a FIFO, a
    socket) is written directly, in place: renaming over it would destroy the device node."""
    real, regular = _target(path)
    if not regular:
        # build the content first: zip writers seek, and a device or FIFO cannot (/dev/null
        # pretends it can, which corrupts the archive's offsets)
        buffer = io.BytesIO()
        write(buffer)
        try:
            with open(real, "wb") as f:
                f.write(buffer.getvalue())
        except OSError as e:
            raise RnncliError(f"{path}: cannot write: {e.strerror or e}") from e
        return
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".rnncli-", suffix=".tmp", dir=os.path.dirname(real) or ".")
        # mkstemp makes the file private (0600); give it the replaced file's mode, or the umask's
        os.fchmod(fd, _mode_for(real))
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, real)
    except OSError as e:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        raise RnncliError(f"{path}: cannot write: {e.strerror or e}") from e
    except BaseException:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path, text):
    """write_file for UTF-8 text."""
    write_file(path, lambda f: f.write(text.encode("utf-8")))


def save_npz(path, arrays, meta):
    """Write arrays plus a JSON `meta` (a 0-d unicode array, stored without pickle) safely."""
    payload = dict(arrays)
    payload["meta"] = np.array(json.dumps(meta, ensure_ascii=False))
    write_file(path, lambda f: np.savez(f, **payload))


def _check_members(raw, path, what):
    """Read each array's header before NumPy allocates it: the size a header declares must fit in
    the bytes its member holds (a crafted header could otherwise ask for terabytes), and only
    plain numbers and text are accepted."""
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        for info in z.infolist():
            if not info.filename.endswith(".npy"):
                continue
            _member_header(z, info, path, what)


def _read_header(f):
    """An .npy header at f's position -> (shape, fortran order, dtype); only plain numbers and text."""
    version = np.lib.format.read_magic(f)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if read_header is None:
        raise ValueError(f"array format {version}")
    shape, fortran, dtype = read_header(f, max_header_size=10_000)
    if dtype.hasobject:
        raise ValueError("object arrays need pickle")
    return shape, fortran, dtype


def release(arr, start, stop):
    """Let go of the pages of arr[start:stop] that this process holds, where arr is mapped from a file
    (np.memmap): they are the file's, read again from it (or the page cache) when next touched. A
    pass over a mapped data set then leaves no trace in the resident memory."""
    mapping = getattr(arr, "_mmap", None)
    if mapping is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    base = getattr(arr, "offset", 0) % mmap.ALLOCATIONGRANULARITY  # numpy maps from the granule before the data
    first = (base + start * arr.itemsize) // mmap.PAGESIZE * mmap.PAGESIZE
    last = base + stop * arr.itemsize
    try:
        mapping.madvise(mmap.MADV_DONTNEED, first, last - first)
    except (OSError, ValueError):
        pass  # only a hint


def in_chunks(arr, size):
    """arr[0:size], arr[size:2 size]... in order; after each, a mapped array's pages of it are let go
    (release), so that one pass over a data set larger than memory leaves no trace in it."""
    for start in range(0, len(arr), size):
        yield arr[start : start + size]
        release(arr, start, min(start + size, len(arr)))


def _member_header(z, info, path, what):
    """A member's .npy header, read before anything is allocated -> (shape, fortran order, dtype, the
    bytes it declares); the size it declares must fit in the bytes the member holds (a crafted header
    could otherwise ask for terabytes)."""
    with z.open(info) as f:
        shape, fortran, dtype = _read_header(f)
    size = dtype.itemsize * math.prod(shape)
    if size > info.file_size:
        raise RnncliError(f"{path}: not a valid rnncli {what} (array {info.filename[:-4]!r} declares "
                          f"{size:,} bytes but holds {info.file_size:,})")
    return shape, fortran, dtype, size


def _mapped_members(path, what):
    """{name: array} of an .npz, each uncompressed array mapped from the file where its data starts
    (the local header's 30 bytes, the name and the extra field, then the .npy header), checked
    against the bytes its member holds before anything is mapped; the others read."""
    with open(path, "rb") as f:
        if f.read(2) != b"PK":
            raise RnncliError(f"{path}: not a valid rnncli {what} (not an .npz archive)")
    arrays = {}
    with zipfile.ZipFile(path) as z, open(path, "rb") as f:
        for info in z.infolist():
            if not info.filename.endswith(".npy"):
                continue
            name = info.filename[:-4]
            f.seek(info.header_offset)
            local = f.read(30)
            if len(local) < 30 or local[:4] != b"PK\x03\x04":
                raise zipfile.BadZipFile(f"member {name!r} has no local header")
            start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + \
                int.from_bytes(local[28:30], "little")
            shape, fortran, dtype, size = _member_header(z, info, path, what)
            if info.compress_type != zipfile.ZIP_STORED or fortran or not shape or dtype.kind == "U" or size == 0:
                with z.open(info) as member:
                    arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
                continue
            f.seek(start)
            _read_header(f)  # to where the data starts
            arrays[name] = np.memmap(path, dtype=dtype, mode="r", offset=f.tell(), shape=shape)
    return arrays


def load_npz(path, what="file", mapped=False):
    """Load every array and the JSON meta; refuse pickles and damaged files with one line.
    mapped: map each uncompressed array from the file instead of reading it (read-only; a data set
    larger than memory), as np.savez stores them; a compressed one is read."""
    if not os.path.exists(path):
        raise RnncliError(f"{path}: no such {what}")
    if os.path.isdir(path):
        raise RnncliError(f"{path}: is a directory, expected a {what}")
    try:
        if mapped:
            arrays = _mapped_members(path, what)
        else:
            with open(path, "rb") as f:
                raw = f.read()
            if not raw.startswith(b"PK"):
                raise RnncliError(f"{path}: not a valid rnncli {what} (not an .npz archive)")
            _check_members(raw, path, what)
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise RnncliError(f"{path}: holds pickled objects; refusing to load it "
                              f"(not an rnncli {what})") from e
        raise RnncliError(f"{path}: not a valid rnncli {what} ({str(e)[:200]})") from e
    except (OSError, zipfile.BadZipFile, EOFError, KeyError, SyntaxError, TypeError, OverflowError) as e:
        raise RnncliError(f"{path}: not a valid rnncli {what} (damaged or truncated: {str(e)[:200]})") from e
    except MemoryError:
        raise RnncliError(f"{path}: not a valid rnncli {what} (an array too large to load)") from None
    if "meta" not in arrays or arrays["meta"].dtype.kind != "U" or arrays["meta"].ndim != 0:
        raise RnncliError(f"{path}: not an rnncli {what} (no metadata)")
    meta = json_value(str(arrays.pop("meta")), f"{path}: damaged metadata")
    if not isinstance(meta, dict):
        raise RnncliError(f"{path}: damaged metadata")
    return arrays, meta


def json_value(text, where):
    """json.loads, with every way it fails (syntax, nesting too deep to follow, numbers too long)
    as one RnncliError starting with `where`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise RnncliError(f"{where} (invalid JSON: {e.msg}, column {e.colno})") from None
    except RecursionError:
        raise RnncliError(f"{where} (JSON nested too deeply)") from None
    except ValueError as e:  # e.g. an integer of more than 4,300 digits
        raise RnncliError(f"{where} (invalid JSON: {str(e)[:100]})") from None
