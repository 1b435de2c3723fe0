"""Reading, writing and hashing files: the one place where the package touches the disk.

Every file the package writes goes through ``atomic_write``: the content lands under a
temporary name in the same folder and is renamed over the target, so a process killed at
any moment leaves either the old file or the new one, never half of one. A folder records
which command wrote which of its files (``claim_outputs``), so no command replaces a file
it did not write.

Only regular files are read (``open_regular``): a FIFO blocks a reader for ever and a device
such as /dev/zero never ends, so both are refused with the reason, also behind a symlink.
Checkpoints are zip archives whose CRCs are checked before use (``check_zip``). Locks
(``exclusive_lock``) are ``flock``s: they die with their process, so a killed run leaves none behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import pickle
import re
import secrets
import stat
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml

from ..facts.errors import CheckpointError, UsageError
from ..facts.literals import check_literal

HASH_CACHE_NAME = "sha256_cache.json"
OUTPUTS_RECORD = ".restyle-lab-outputs.json"  # file name -> the command that wrote it
MAX_SETTINGS_BYTES = 16 << 20  # a --params / --methods-json file: names and values, never this large
CACHED_FROM_BYTES = 16 << 20  # hashes and zip checks of larger files are remembered by (path, size, times)


def data_dir() -> Path:
    """The package's cache folder: $RESTYLE_LAB_DATA, else ~/.cache/restyle-lab."""
    return Path(os.environ.get("RESTYLE_LAB_DATA", Path.home() / ".cache" / "restyle-lab"))


# --------------------------------------------------------------------------- writing

def atomic_write(path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it to ``path``. An OS error
    (a full disk) names ``path``, never the temporary file."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give the path of a file to write")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        if err.filename and str(err.filename) != str(tmp):
            raise
        hint = " (nothing was written: free some space and run the same command again)" \
            if err.errno in (errno.ENOSPC, errno.EDQUOT) else \
            " (nothing was written: choose a folder you may write to)" \
            if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else ""
        raise OSError(err.errno, f"{err.strerror or err}{hint}", str(path)) from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_json(path, value, indent: int | None = 1) -> Path:
    return atomic_write_text(path, json.dumps(value, indent=indent, default=str))


def atomic_save_npy(path, value) -> Path:
    """``np.save`` (pickling allowed: the official latents.npy is a pickled dict)."""
    def write(tmp):
        with open(tmp, "wb") as fh:
            np.save(fh, value, allow_pickle=True)

    return atomic_write(path, write)


def atomic_save_npz(path, compress: bool = False, **arrays) -> Path:
    def write(tmp):
        with open(tmp, "wb") as fh:
            (np.savez_compressed if compress else np.savez)(fh, **arrays)

    return atomic_write(path, write)


def atomic_torch_save(payload, path) -> str:
    """``torch.save`` through ``atomic_write``; returns the file's sha256."""
    def save(tmp):
        # written through a file we open: a folder we may not write to, or a full disk, is then an OSError
        # naming the file (torch's own zip writer reports both as RuntimeErrors that name neither)
        with open(tmp, "wb") as fh:
            try:
                torch.save(payload, fh)
            except RuntimeError as err:  # torch's zip writer reports some failed writes this way
                if "write" not in str(err).lower() and "unexpected pos" not in str(err):
                    raise
                raise OSError(errno.EIO, f"writing failed ({first_line(err)[-120:]}); is the disk full?") from None

    atomic_write(path, save)
    return sha256_file(path)


def keep_copy(src, dst) -> Path:
    """Make ``dst`` a copy of the regular file ``src`` (a hard link where the file system allows one), swapped
    in atomically: ``dst`` is always the old copy or the new one."""
    src, dst = Path(src), Path(dst)

    def link(tmp):
        try:
            os.link(src, tmp)
        except OSError:  # no hard links here (another file system, FAT, some network mounts)
            with open_regular(src) as fh, open(tmp, "wb") as out:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    out.write(block)

    return atomic_write(dst, link)


@contextlib.contextmanager
def exclusive_lock(path, wait: bool = False):
    """Hold an exclusive lock on the file ``path`` (created); yields False when another process holds it and
    ``wait`` is off. The lock is an ``flock``: it dies with its process, so a killed process leaves no stale
    lock. The holder writes its process id into the file (``lock_holder`` reads it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def lock_holder(path) -> str:
    """The process id written into a lock file by its holder ('' when unknown)."""
    try:
        text = read_regular(path, 64).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


# --------------------------------------------------------------------------- hashing

def _sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open_regular(path) as fh:  # a regular file: hashing ends
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path, cache: bool = True) -> str:
    """sha256 of a regular file. Hashes of files over 16 MB are remembered on disk by (path, size,
    mtime, ctime), so a 1 GB checkpoint is read once, not once per notebook. (Rewriting a file changes
    its ctime even when its mtime is set back, so a changed file is hashed again.)"""
    path = Path(path).resolve()
    return _cached(path, "sha256", _sha256) if cache else _sha256(path)


def _cached(path: Path, tag: str, compute: Callable[[Path], str]) -> str:
    """``compute(path)``, remembered in the cache folder for files of CACHED_FROM_BYTES and more."""
    st = path.stat()
    if st.st_size < CACHED_FROM_BYTES:
        return compute(path)
    key = f"{tag}|{path}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"
    cache_path = data_dir() / HASH_CACHE_NAME
    known = _read_hash_cache(cache_path)
    if key not in known:
        known = {**_read_hash_cache(cache_path), key: compute(path)}  # re-read: another process may have added
        try:
            atomic_write_json(cache_path, known, indent=0)
        except OSError:  # a read-only cache folder only costs time
            pass
    return known[key]


def _read_hash_cache(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}


# --------------------------------------------------------------------------- regular files only

class SpecialFile(OSError):
    """A path that is not a regular file (a FIFO, a device, a socket, a folder): never read."""


class TooLarge(OSError):
    """A regular file over the size cap of what it is read as."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def megabytes(n: int) -> str:
    return f"{n / (1 << 20):.0f} MB" if n >= (1 << 20) else f"{n} bytes"


def open_network_file(path: Path, expected: str):
    """``path`` opened as ``open_regular`` opens it, or CheckpointError in one line: missing, a broken link,
    or a special file (``expected`` says what should be there)."""
    if not os.path.lexists(path):
        raise CheckpointError(f"{path}: no such file")
    try:
        return open_regular(path)
    except SpecialFile as err:
        raise CheckpointError(f"{path}: {err.strerror}; expected {expected}") from None
    except FileNotFoundError:
        raise CheckpointError(f"{path}: broken link (the file it points to is missing)") from None


def open_regular(path, max_bytes: int | None = None):
    """``path`` (or what it links to) opened for binary reading if it is a regular file of at most
    ``max_bytes``; else SpecialFile / TooLarge naming it. Opened without blocking, then checked on the
    open descriptor, so a FIFO swapped in between cannot hang the reader."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SpecialFile(errno.EINVAL, f"{_kind(st.st_mode)}, not a regular file (only regular files are "
                              "read: reading a pipe or a device could wait for ever or never end)", str(path))
        if max_bytes is not None and st.st_size > max_bytes:
            raise TooLarge(errno.EFBIG, f"{megabytes(st.st_size)}, over the {megabytes(max_bytes)} cap for this "
                           "kind of file", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path, max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (see ``open_regular``)."""
    with open_regular(path, max_bytes) as fh:
        data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:  # it grew while being read
        raise TooLarge(errno.EFBIG, f"over the {megabytes(max_bytes)} cap for this kind of file", str(path))
    return data


def file_problem(path) -> str | None:
    """Why ``path`` cannot be read as a file ('not found', 'a broken link', 'a FIFO (named pipe), not a
    regular file ...'), or None when it is (or links to) a regular file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken link (the file it points to is missing)" if os.path.islink(path) else "not found"
    except OSError as err:
        return err.strerror or str(err)
    return None if stat.S_ISREG(mode) else f"{_kind(mode)}, not a regular file"


def is_regular(path) -> bool:
    """Is ``path`` (following links) a regular file? False for a broken link and for special files."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


# --------------------------------------------------------------------------- who wrote what

def recorded_outputs(folder) -> dict:
    """file name -> the command that wrote it, as recorded in ``folder`` (empty if nothing is)."""
    try:
        value = json.loads(read_regular(Path(folder) / OUTPUTS_RECORD, MAX_SETTINGS_BYTES))
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}


def foreign_outputs(folder, command: str, names) -> dict:
    """Those of ``names`` present in ``folder`` that ``command`` did not write: name -> who did ('' when
    no restyle-lab command recorded it: the user's own)."""
    folder, record = Path(folder), recorded_outputs(folder)
    present = [n for n in names if os.path.lexists(folder / n)]
    return {n: record.get(n, "") for n in present if record.get(n) != command}


def refuse_foreign(folder, command: str, names, what: str) -> None:
    """UsageError when ``folder`` holds one of ``names`` that ``command`` did not write."""
    foreign = foreign_outputs(folder, command, names)
    if foreign:
        shown = ", ".join(f"{n} ({f'written by restyle-lab {who}' if who else 'not written by restyle-lab'})"
                          for n, who in list(foreign.items())[:4]) + (" ..." if len(foreign) > 4 else "")
        raise UsageError(f"{what} {folder} already holds {shown}; `restyle-lab {command}` never replaces a file it "
                         "did not write: choose a new folder")


def record_outputs(folder, command: str, names) -> None:
    """Record ``names`` in ``folder`` as written by ``command`` (before writing them: a run killed half-way
    may then finish the job)."""
    record = {**recorded_outputs(folder), **{str(n): command for n in names}}
    atomic_write_json(Path(folder) / OUTPUTS_RECORD, record, indent=0)


# --------------------------------------------------------------------------- reading

def _test_zip(fh) -> tuple[str | None, BaseException | None]:
    """(the first member failing its CRC, or None; the error that stopped the archive being read, or None)."""
    try:
        with zipfile.ZipFile(fh) as zf:
            return zf.testzip(), None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as err:
        return None, err


def zip_problem(fh) -> str | None:
    """What is wrong with the zip archive open in ``fh``, in a few words, or None when every member reads back
    with its CRC."""
    bad, err = _test_zip(fh)
    if err is not None:
        return (f"not a readable zip archive ({os.fstat(fh.fileno()).st_size} bytes; truncated?): "
                f"{type(err).__name__}: {first_line(err)}")
    return None if bad is None else f"its member {bad} fails the zip CRC check (a flipped bit or a bad copy)"


def check_zip(fh, path, what: str = "file") -> None:
    """Every member of the zip archive open in ``fh`` reads back with its CRC; else CheckpointError."""
    bad, err = _test_zip(fh)
    if err is not None:
        raise CheckpointError(f"{path}: not a readable {what} ({os.fstat(fh.fileno()).st_size} bytes; truncated or "
                              f"corrupt download?): {type(err).__name__}: {first_line(err)}. Download the file again "
                              "and compare its sha256.")
    if bad is not None:
        raise CheckpointError(f"{path}: damaged {what}: its member {bad} fails the zip CRC check (a flipped bit or a "
                              "bad copy). Download or copy the file again and compare its sha256.")


def _zip_ok(path: Path) -> str:
    with open_regular(path) as fh:
        check_zip(fh, path, "PyTorch checkpoint")
    return "ok"


def read_torch(path) -> object:
    """``torch.load(path, map_location='cpu', weights_only=True)`` with errors that name the file.

    No code stored in a file is ever run: pickled classes are refused with the reason. Only a regular
    file is read, and a zip archive (torch.save's format) only once its CRCs check out.
    """
    path = Path(path)
    with open_network_file(path, "a checkpoint file (.pt)") as fh:
        head = fh.read(4)
        if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch.save's zip archive, or its legacy pickle
            what = "an empty file" if not head else "text" if all(32 <= c < 127 or c in (9, 10, 13) for c in head) \
                else f"bytes {head!r}"
            raise CheckpointError(f"{path}: not a PyTorch checkpoint (it starts with {what}; torch.save files are "
                                  "zip archives). Give the .pt file itself, or download it again.")
        if head.startswith(b"PK"):
            _cached(path.resolve(), "zipcrc", _zip_ok)
        fh.seek(0)
        return _load(fh, path)


_GLOBAL = re.compile(r"(?:GLOBAL|global)\s+([\w.]+)(?:\s+([\w.]+))?")
# what every NVlabs network pickle references (its modules are "persistent" objects, see nvlabs_pickle)
NVLABS_MARKER = b"torch_utils.persistence"


def refused_global(text: str) -> str | None:
    """The global an unpickler's message names ('posix.system'), or None."""
    found = _GLOBAL.search(text)
    if not found:
        return None
    module, name = found.groups()
    return f"{module}.{name}" if "." not in module and name and name != "was" else module


def unpickling_reason(err: BaseException) -> str:
    """An unpickler's error in a few words: the global it refused, else the first line of its own detail.
    Never torch's advice, which suggests loading with ``weights_only=False``: that would run the file's code."""
    text = str(err)
    name = refused_global(text)
    if name:
        return f"it references {name}"
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if "weights_only" in line.lower() or "weights only" in line.lower():
        line = "the restricted unpickler refused it"
    return f"{type(err).__name__}: {line[:160]}"


def is_nvlabs_pickle_file(fh) -> bool:
    """Does the file open in ``fh`` look like an NVlabs network pickle (its first MB names NVlabs' persistence)?"""
    fh.seek(0)
    head = fh.read(1 << 20)
    return head.startswith(b"\x80") and NVLABS_MARKER in head


def _load(fh, path: Path) -> object:
    try:
        with warnings.catch_warnings():  # a plain pickle (an NVlabs snapshot) warns of its protocol before failing
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(fh, map_location="cpu", weights_only=True)
    except Exception as err:  # the unpickler raises many types (IndexError on text, EOFError, ...)
        if is_nvlabs_pickle_file(fh):
            renamed = "" if path.suffix.lower() == ".pkl" else \
                " (or give the file a .pkl name: where a generator is asked for, a .pkl is read as a snapshot)"
            raise CheckpointError(
                f"{path}: an NVlabs network pickle (a stylegan2-ada-pytorch snapshot), not a PyTorch checkpoint: "
                f"convert its generator with `restyle-lab convert {path} generator.pt`{renamed}") from None
        if isinstance(err, pickle.UnpicklingError) and refused_global(str(err)):
            raise CheckpointError(
                f"{path}: refused: the file holds pickled Python objects (GLOBAL {refused_global(str(err))}) "
                "that only run as code. restyle-lab loads checkpoints with weights_only=True and never executes a "
                "file's code. If you trust the file, load it yourself and re-save plain dicts of tensors, numbers "
                "and strings with torch.save.") from None
        if isinstance(err, pickle.UnpicklingError):
            raise CheckpointError(f"{path}: not a PyTorch checkpoint (unpickling failed: {unpickling_reason(err)})"
                                  ) from None
        size = path.stat().st_size
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({size} bytes; truncated or corrupt download?): "
            f"{unpickling_reason(err)}. Download the file again and compare its sha256.") from None


def first_line(err: BaseException) -> str:
    text = str(err)
    return text.splitlines()[0] if text else ""


def read_settings(path, what: str):
    """A JSON or YAML file (by its extension) of settings: plain literals only (``literals.check_literal``:
    a settings file is data, it never runs code). A missing, special, oversized, malformed or too deeply
    nested file is a UsageError naming ``what`` (the option that gave it)."""
    path = Path(path)
    kind = "YAML" if path.suffix.lower() in (".yml", ".yaml") else "JSON"
    if not os.path.lexists(path):
        raise UsageError(f"{what} {path}: no such file")
    try:
        data = read_regular(path, MAX_SETTINGS_BYTES)
    except OSError as err:
        raise UsageError(f"{what} {path}: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8")
        value = yaml.safe_load(text) if kind == "YAML" else json.loads(text)
    except (ValueError, yaml.YAMLError) as err:  # UnicodeDecodeError is a ValueError
        raise UsageError(f"{what} {path}: not valid {kind} ({first_line(err)})") from None
    except RecursionError:
        raise UsageError(f"{what} {path}: nested too deeply to read; settings are names and plain values") from None
    return check_literal(value, f"{what} {path}")
