"""Crash-safe WAV files: written as NAME.wav.part with sizes kept current, repaired on restart.

Why this shape: a WAV header holds the data size, which is only known at the
end. We write the header first with the sizes so far and rewrite just the
size fields (`os.pwrite`, no seek) every second or so; a process killed
mid-recording leaves a `.part` file whose audio is all there (the page cache
survives the process), and whose sizes are at most a second stale.
`repair()` then sets the sizes from the file length, which is the truth, and
drops a torn last frame. Only a machine crash can lose the audio written since
the last `sync()` (the recorder fsyncs at a bounded rate).

Formats: PCM16 (format tag 1) and A-law (format tag 6, 8 bits, with the
`fact` chunk that non-PCM WAV files carry), 1 or 2 channels. Headers have a
fixed length (44 and 58 bytes), so the size fields are at fixed offsets.
"""
from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RATE = 8000
PART = ".part"

# name -> (format tag, bytes per sample)
FORMATS: dict[str, tuple[int, int]] = {"pcm16": (1, 2), "alaw": (6, 1)}
_TAG_NAMES = {tag: name for name, (tag, _) in FORMATS.items()}
MAX_DATA = 0xFFFF_FF00   # RIFF sizes are 32-bit: stop before they overflow


class WavError(Exception):
    """A file that is not a WAV this module wrote or can repair; the message names it."""


@dataclass(frozen=True)
class WavInfo:
    fmt: str           # "pcm16" | "alaw"
    channels: int
    rate: int
    data_offset: int   # where the samples start
    data_bytes: int    # as the header says (may be stale in a .part file)

    @property
    def frame_bytes(self) -> int:
        return FORMATS[self.fmt][1] * self.channels

    @property
    def frames(self) -> int:
        return self.data_bytes // self.frame_bytes


def _layout(fmt: str) -> tuple[int, int | None, int]:
    """(offset of RIFF size, offset of fact sample count or None, offset of data size)."""
    return (4, None, 40) if fmt == "pcm16" else (4, 46, 54)


def header(fmt: str, channels: int, rate: int = RATE, data_bytes: int = 0) -> bytes:
    """The full header for `data_bytes` of audio (sizes at fixed offsets, see _layout)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown WAV format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if channels not in (1, 2):
        raise ValueError(f"channels must be 1 or 2, not {channels}")
    tag, width = FORMATS[fmt]
    align = width * channels
    pad = data_bytes & 1
    if fmt == "pcm16":
        fmt_chunk = struct.pack("<4sIHHIIHH", b"fmt ", 16, tag, channels, rate, rate * align, align, 16)
        fact = b""
    else:
        fmt_chunk = struct.pack("<4sIHHIIHHH", b"fmt ", 18, tag, channels, rate, rate * align, align, 8, 0)
        fact = struct.pack("<4sII", b"fact", 4, data_bytes // align)
    body = fmt_chunk + fact + struct.pack("<4sI", b"data", data_bytes)
    return struct.pack("<4sI4s", b"RIFF", 4 + len(body) + data_bytes + pad, b"WAVE") + body


def header_len(fmt: str) -> int:
    return len(header(fmt, 1))


class WavFile:
    """A WAV file being written through a raw fd; `write` appends, `update_header` publishes sizes."""

    def __init__(self, path: str | os.PathLike, *, fmt: str, channels: int, rate: int = RATE) -> None:
        self.path = Path(path)
        self.fmt, self.channels, self.rate = fmt, channels, rate
        head = header(fmt, channels, rate)   # validates before creating anything
        self.frame_bytes = FORMATS[fmt][1] * channels
        self._hlen = len(head)
        self.data_bytes = 0
        self._published = -1
        # O_EXCL: never overwrite another recording.
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            self._write_all(head)
        except OSError:
            self.abort()
            raise
        self._published = 0

    @property
    def frames(self) -> int:
        return self.data_bytes // self.frame_bytes

    @property
    def closed(self) -> bool:
        return self._fd is None

    def _write_all(self, data: bytes | memoryview) -> int:
        if self._fd is None:
            raise ValueError(f"{self.path}: written after close")
        fd = self._fd
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            n = os.write(fd, view[done:])  # a short write is followed by the ENOSPC raise
            if n <= 0:
                raise OSError("write returned 0")
            done += n
            if self._hlen and self._published >= 0:
                self.data_bytes += n
        return done

    def write(self, data: Any) -> None:
        """Append whole frames. On OSError (disk full...) the bytes that did land are counted."""
        if self._fd is None:
            raise ValueError(f"{self.path}: write to a closed WavFile")
        view = memoryview(data).cast("B")
        if len(view) % self.frame_bytes:
            raise ValueError(f"{self.path}: {len(view)} bytes is not a whole number of "
                             f"{self.frame_bytes}-byte frames")
        if self.data_bytes + len(view) > MAX_DATA:
            raise OSError(errno.EFBIG, f"{self.path}: WAV data would exceed the 4 GiB RIFF limit")
        self._write_all(view)

    def update_header(self) -> None:
        """Rewrite the size fields for the whole frames written so far (in place)."""
        if self._fd is None or self.data_bytes == self._published:
            return
        _patch_sizes(self._fd, self.fmt, self.channels, self.frames * self.frame_bytes)
        self._published = self.data_bytes

    def sync(self) -> None:
        if self._fd is not None:
            os.fdatasync(self._fd)

    def close(self) -> None:
        """Drop a torn last frame, pad to even length, publish sizes, fsync, close."""
        if self._fd is None:
            return
        fd = self._fd
        try:
            whole = self.frames * self.frame_bytes
            if whole != self.data_bytes:
                os.ftruncate(fd, self._hlen + whole)
                self.data_bytes = whole
            if whole & 1:
                os.pwrite(fd, b"\0", self._hlen + whole)
            _patch_sizes(fd, self.fmt, self.channels, whole)
            self._published = whole
            os.fdatasync(fd)
        finally:
            self._fd = None
            os.close(fd)

    def abort(self) -> None:
        """Close without touching the file (the caller deletes or repairs it)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def _patch_sizes(fd: int, fmt: str, channels: int, data_bytes: int) -> None:
    riff, fact, data = _layout(fmt)
    hlen = header_len(fmt)
    pad = data_bytes & 1
    os.pwrite(fd, struct.pack("<I", hlen - 8 + data_bytes + pad), riff)
    if fact is not None:
        os.pwrite(fd, struct.pack("<I", data_bytes // (FORMATS[fmt][1] * channels)), fact)
    os.pwrite(fd, struct.pack("<I", data_bytes), data)


def read_header(path: str | os.PathLike) -> WavInfo:
    """Parse a header this module writes (fixed layout); WavError for anything else."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise WavError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(head) < 44 or head[:4] != b"RIFF" or head[8:12] != b"WAVE" or head[12:16] != b"fmt ":
        raise WavError(f"{path}: not a RIFF/WAVE file with a leading fmt chunk")
    fmt_size, tag, channels, rate = struct.unpack_from("<IHHI", head, 16)
    name = _TAG_NAMES.get(tag)
    if name is None or channels not in (1, 2):
        raise WavError(f"{path}: format tag {tag} with {channels} channels is not a recording format")
    _, _, data_off = _layout(name)
    if len(head) < data_off + 4 or head[data_off - 4:data_off] != b"data" \
            or fmt_size != (16 if name == "pcm16" else 18):
        raise WavError(f"{path}: header layout is not the recorder's (fmt size {fmt_size})")
    (data_bytes,) = struct.unpack_from("<I", head, data_off)
    return WavInfo(name, channels, rate, data_off + 4, data_bytes)


def repair(path: str | os.PathLike) -> WavInfo:
    """Make the header agree with the file length: whole frames only, sizes set, fsynced.

    Returns the repaired WavInfo (frames = the audio that survived).
    """
    info = read_header(path)
    fd = os.open(path, os.O_RDWR)
    try:
        length = os.fstat(fd).st_size
        whole = (max(0, length - info.data_offset) // info.frame_bytes) * info.frame_bytes
        whole = min(whole, MAX_DATA - MAX_DATA % info.frame_bytes)
        keep = info.data_offset + whole
        if length != keep:
            os.ftruncate(fd, keep)
        if whole & 1:
            os.pwrite(fd, b"\0", keep)
        _patch_sizes(fd, info.fmt, info.channels, whole)
        os.fsync(fd)
    finally:
        os.close(fd)
    return WavInfo(info.fmt, info.channels, info.rate, info.data_offset, whole)


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a create/rename/unlink in `path` durable (best effort where dirs cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["WavFile", "WavInfo", "WavError", "FORMATS", "PART", "header", "read_header", "repair",
           "fsync_dir"]
