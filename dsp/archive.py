"""Run a recording detector over an archive: many files, long files, every core.

`voiceboard dtmf`, `cid`, `tones` and `audit` are one runner with four
detectors (a `Tool` each). The runner:

- takes files and directories (recursive; `--glob`, default `*.wav`, case
  does not matter) and runs one file per process on every core (`-j N`);
- reads each file in blocks as int16 at 8 kHz (dsp.audiofile.AudioStream:
  other rates resampled block by block), so memory does not grow with the
  length or the channel count of a file;
- cuts a long channel into overlapping segments run side by side as the
  channels of one detector batch (the detectors are built for boards: 32
  channels cost about what one does), then stitches the segments' results so
  that an event across a seam is reported once, with the times an
  unsegmented run gives;
- prints a readable table or JSON lines naming the file, warnings and errors
  on stderr (naming the file), and a progress line on stderr when stderr is
  a terminal.

Exit status, the same for every tool: 0 something found, 1 nothing found
(and a line on stderr saying so), 2 a usage or input error (a missing or
unreadable file; the other files are still processed). `audit` inverts the
meaning of "found" (see dsp/audit_cli.py).
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

RATE = 8000
EXIT_FOUND = 0
EXIT_NOTHING = 1
EXIT_ERROR = 2

EXIT_STATUS_HELP = ("exit status: 0 something found, 1 nothing found (said on stderr), "
                    "2 usage or input error (missing or unreadable file; the other files "
                    "are still processed)")

# Lane grid: segment starts fall on multiples of the DTMF sub-block (34),
# the tone frame (160) and the FSK oscillator period (80), so a segment's
# detector sees the same analysis windows as an unsegmented run.
GRID = 2720
LANES = 32           # segments per batch: one DTMF tile
MIN_SEGMENT_S = 10.0  # no segment shorter than this (nor than 4x its overlap)


@dataclass
class Found:
    """Something a detector found: positions in samples (8 kHz).

    Relative to the lane's start while a file is being analysed, absolute
    (and `lane` = file channel) once stitched. `end` None: still on where the
    audio stops. `key` (digit, tone, format) matches an event across seams.
    """
    lane: int
    start: int
    end: int | None
    key: str
    data: Any = None


class Analyser(Protocol):
    def rx(self, block: Any) -> None:
        """Feed int16[nlanes, n]."""

    def finish(self) -> list[Found]:
        """Flush (silence after the end) and return everything found."""


class Tool:
    """What one command looks for; subclassed in dsp/*_cli.py.

    Segmentation: a Found belongs to the segment whose own range holds its
    `anchor` ("start" or "end"); each segment also reads `warmup_s` before
    and `tail_s` after its own range. `warmup_s` must cover what the
    detector needs to settle and, for anchor "end", the longest event.
    An event that ends `open_margin_s` or less before a segment's stop may
    still be on there (the detector reports an end that late): its end is
    taken from the next segment.
    """
    name = "tool"
    nothing = "nothing found"
    split = True
    batch_files = True  # short files may run side by side as lanes of one batch
    anchor = "start"
    warmup_s = 1.0
    tail_s = 1.0
    open_margin_s = 0.01

    def analyser(self, nlanes: int) -> Analyser:
        raise NotImplementedError

    def rows(self, found: list[Found], result: FileResult) -> list[dict]:
        """JSON-ready rows (without "file"), in output order; may add result.warnings."""
        raise NotImplementedError

    def table_header(self) -> str:
        return ""

    def json_row(self, row: dict) -> str:
        """The row as a JSON object (a tool with many rows may format its own, faster)."""
        return _json(row)

    def table_row(self, row: dict) -> str:
        return json.dumps(row, ensure_ascii=False)

    def file_line(self, result: FileResult) -> str | None:
        """A line before a file's rows in the table (None: none)."""
        return None

    def exit_status(self, found: int, errors: int) -> int:
        """0 something found, 1 nothing found, 2 a usage or input error."""
        if errors:
            return EXIT_ERROR
        return EXIT_FOUND if found else EXIT_NOTHING


@dataclass
class FileResult:
    path: str
    rows: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    channels: int = 0
    samples: int = 0     # per channel, at 8 kHz
    seconds: float = 0.0  # per channel


@dataclass(frozen=True)
class LanePlan:
    """A lane and the part of its channel it answers for."""
    channel: int
    start: int     # first sample read
    stop: int      # end of what is read
    own_start: int
    own_stop: int
    cut: bool      # stops before the channel does (a later lane continues it)


def _ceil_to(x: int, step: int) -> int:
    return -(-x // step) * step


def plan_lanes(channels: int, samples: int, up: int, tool: Tool, split: bool = True) -> list[LanePlan]:
    """Lanes for a file: one per channel, or overlapping segments of long channels."""
    whole = [LanePlan(c, 0, samples, 0, samples, False) for c in range(channels)]
    if not (split and tool.split) or channels >= LANES:
        return whole
    grid = GRID * up // math.gcd(GRID, up)
    warm = _ceil_to(int(tool.warmup_s * RATE), grid)
    tail = int(tool.tail_s * RATE)
    min_own = max(int(MIN_SEGMENT_S * RATE), 4 * (warm + tail))
    nseg = min(-(-LANES // channels), samples // min_own)
    if nseg < 2:
        return whole
    own = _ceil_to(-(-samples // nseg), grid)
    lanes = []
    for c in range(channels):
        for a in range(0, samples, own):
            b = min(samples, a + own)
            stop = min(samples, b + tail)
            lanes.append(LanePlan(c, max(0, a - warm), stop, a, b, stop < samples))
    return lanes


def stitch(tool: Tool, lanes: list[LanePlan], found: list[Found]) -> list[Found]:
    """Segment results -> channel results: each event once, with unsegmented times."""
    by_lane: list[list[Found]] = [[] for _ in lanes]
    for f in found:
        ln = lanes[f.lane]
        by_lane[f.lane].append(Found(ln.channel, ln.start + f.start,
                                     None if f.end is None else ln.start + f.end, f.key, f.data))
    out = []
    margin = int(tool.open_margin_s * RATE)
    for i, ln in enumerate(lanes):
        for f in by_lane[i]:
            anchor = f.start if tool.anchor == "start" or f.end is None else f.end
            if not ln.own_start <= anchor < ln.own_stop:
                continue
            if ln.cut and (f.end is None or f.end >= ln.stop - margin):
                f.end = _continued(lanes, by_lane, i + 1, f.key, margin, f.end)
            out.append(f)
    return out


def _continued(lanes: list[LanePlan], by_lane: list[list[Found]], j: int, key: str, margin: int,
               default: int | None) -> int | None:
    """End of the event `key` on at the cut before lane j (`margin` before its stop), as the lanes
    after the cut saw it."""
    t = lanes[j - 1].stop - margin
    while j < len(lanes) and lanes[j].start <= t:
        match = [f for f in by_lane[j] if f.key == key and f.start <= t
                 and (f.end is None or f.end >= t)]
        if not match:
            break
        end = match[0].end
        if not lanes[j].cut or (end is not None and end < lanes[j].stop - margin):
            return end
        t, j = lanes[j].stop - margin, j + 1
    return default


def block_size(nlanes: int) -> int:
    """Detector block (samples): measured fastest for the DTMF kernel at that width."""
    return 800 if nlanes >= 64 else 1600


def scan_file(tool: Tool, path: str, split: bool = True) -> FileResult:
    """Run `tool` over one file, streaming; errors come back in the result."""
    from dsp.audiofile import AudioFileError, AudioStream, Lane
    res = FileResult(path)
    if not os.path.exists(path):
        res.error = "no such file"
        return res
    if os.path.isdir(path):
        res.error = "is a directory"
        return res
    try:
        with AudioStream(path) as st:
            res.channels, res.samples, res.seconds = st.channels, st.samples, st.seconds
            if st.channels < 1 or st.samples < 1:
                return res  # an empty recording (a call that never connected): nothing in it
            plan = plan_lanes(st.channels, st.samples, st.up, tool, split)
            an = tool.analyser(len(plan))
            for block in st.blocks([Lane(p.channel, p.start, p.stop) for p in plan],
                                   block_size(len(plan))):
                an.rx(block)
            found = an.finish()
    except AudioFileError as exc:
        res.error = str(exc).removeprefix(f"{path}: ")
        return res
    except (ValueError, MemoryError) as exc:
        res.error = f"cannot analyse: {exc}"
        return res
    res.rows = tool.rows(stitch(tool, plan, found), res)
    return res


GROUP_MAX_BYTES = 4 << 20      # a file this small may share a batch (4 MB: ~4 min of 8 kHz PCM)
GROUP_MAX_SAMPLES = 300 * RATE  # ... if it also lasts at most 5 minutes


_batch: Any = None  # the last batch's buffer (a worker runs batch after batch of the same shape)


def _batch_buffer(shape: tuple[int, int, int]) -> Any:
    """int16[block, lane, sample] for scan_group, not zeroed: every lane is written before it is read.

    Reused from the last batch when the shape is the same: a fresh 10 MB buffer per
    batch of 32 calls cost its page faults and zeroing (5 % of a run over short calls).
    """
    global _batch
    import numpy as np
    if _batch is None or _batch.shape != shape:
        _batch = None
        _batch = np.empty(shape, np.int16)
    return _batch


def scan_group(tool: Tool, paths: list[str], split: bool = True) -> list[FileResult]:
    """Short files side by side as the lanes of one batch, each file's results its own.

    A lone channel costs the DTMF kernel a whole 32-channel tile; 32 short
    calls in one batch cost about what one does. A file that turns out long
    or wide (or unreadable) is run alone, as scan_file would.
    """
    import numpy as np

    from dsp.audiofile import AudioFileError, AudioStream, Lane
    results: dict[int, FileResult] = {}
    members: list[tuple[int, AudioStream, list[LanePlan]]] = []
    width = 0
    try:
        for i, path in enumerate(paths):
            if not os.path.isfile(path):
                results[i] = scan_file(tool, path, split)
                continue
            try:
                st = AudioStream(path)
            except AudioFileError:
                results[i] = scan_file(tool, path, split)  # says why
                continue
            if (st.samples < 1 or st.samples > GROUP_MAX_SAMPLES
                    or width + st.channels > LANES):
                st.close()
                results[i] = scan_file(tool, path, split)
                continue
            plan = [LanePlan(c, 0, st.samples, 0, st.samples, False) for c in range(st.channels)]
            members.append((i, st, plan))
            width += st.channels
        if members:
            n = block_size(width)
            # read in chunks of 100 blocks (a 20 s call at once; 10 MB for 32 lanes): few
            # Python steps per file
            nblk = 100
            chunk = n * nblk
            # the batch as [block, lane, sample]: each block is contiguous for the detector
            x = _batch_buffer((nblk, width, n))
            raw = np.empty(chunk * max(st.channels for _, st, _ in members), np.int16)
            gens = [None if st.up == st.down == 1 and st._int16 else
                    st.blocks([Lane(c, 0, st.samples) for c in range(st.channels)], chunk)
                    for _, st, _ in members]
            an = tool.analyser(width)
            length = max(st.samples for _, st, _ in members)
            for done in range(0, length, chunk):
                k = min(chunk, length - done)
                row = 0
                for g, (_, st, _) in zip(gens, members, strict=True):
                    lanes = slice(row, row + st.channels)
                    row += st.channels
                    if done >= st.samples:
                        if done - chunk < st.samples:  # the file ended in the last chunk
                            x[:, lanes] = 0
                        continue
                    if g is None:  # 8 kHz 16-bit: straight from the file (zeros past its end)
                        buf = raw[:chunk * st.channels].reshape(chunk, st.channels)
                        st.read_into(done, buf)
                        x[:, lanes] = buf.reshape(nblk, n, st.channels).transpose(0, 2, 1)
                    else:
                        b = next(g)
                        if b.shape[1] < chunk:
                            b = np.concatenate([b, np.zeros((st.channels, chunk - b.shape[1]), np.int16)],
                                               axis=1)
                        x[:, lanes] = b.reshape(st.channels, nblk, n).transpose(1, 0, 2)
                for i in range(0, -(-k // n)):
                    m = min(n, k - i * n)
                    an.rx(x[i] if m == n else x[i, :, :m])
            found = an.finish()
            by_lane: list[list[Found]] = [[] for _ in range(width)]
            for f in found:
                by_lane[f.lane].append(f)
            first = 0
            for i, st, plan in members:
                mine = [Found(f.lane - first, f.start, f.end, f.key, f.data)
                        for lane in by_lane[first:first + st.channels] for f in lane]
                res = FileResult(st.path, channels=st.channels, samples=st.samples, seconds=st.seconds)
                res.rows = tool.rows(stitch(tool, plan, mine), res)
                results[i] = res
                first += st.channels
    except (AudioFileError, ValueError, MemoryError):
        # a file failed mid-read: run the group's files one by one, each saying for itself
        for i, _, _ in members:
            results[i] = scan_file(tool, paths[i], split)
    finally:
        for _, st, _ in members:
            st.close()
    return [results[i] for i in range(len(paths))]


# ---------------------------------------------------------------- files and processes

def expand_paths(paths: list[str], pattern: str) -> list[str]:
    """Files named, and files under directories (recursively) matching `pattern`.

    A path that does not exist stays in the list (it is reported as an error).
    """
    out: list[str] = []
    pat = pattern.lower()
    for p in paths:
        if not os.path.isdir(p):
            out.append(p)
            continue
        for root, dirs, files in os.walk(p):
            dirs.sort()
            out.extend(os.path.join(root, f) for f in sorted(files)
                       if fnmatch.fnmatchcase(f.lower(), pat))
    return out


def _worker_init() -> None:
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C


def tasks(tool: Tool, files: list[str]) -> list[list[str]]:
    """Files cut into work units: runs of small files share one (up to LANES), others go alone."""
    out: list[list[str]] = []
    group: list[str] = []
    for path in files:
        try:
            small = tool.batch_files and os.path.getsize(path) <= GROUP_MAX_BYTES
        except OSError:
            small = False
        if small:
            group.append(path)
            if len(group) == LANES:
                out.append(group)
                group = []
            continue
        if group:
            out.append(group)
            group = []
        out.append([path])
    if group:
        out.append(group)
    return out


def _run_task(tool: Tool, paths: list[str], split: bool) -> list[FileResult]:
    try:
        if len(paths) == 1:
            return [scan_file(tool, paths[0], split)]
        return scan_group(tool, paths, split)
    except Exception as exc:  # one bad file must not stop an archive run
        if len(paths) > 1:
            return [r for p in paths for r in _run_task(tool, [p], split)]
        return [FileResult(paths[0], error=f"internal error: {type(exc).__name__}: {exc}")]


def run_files(tool: Tool, files: list[str], jobs: int, split: bool = True,
              progress: Progress | None = None):
    """FileResults in the order of `files`, computed on `jobs` processes."""
    work = tasks(tool, files)
    if jobs <= 1 or len(work) <= 1:
        for paths in work:
            for r in _run_task(tool, paths, split):
                if progress:
                    progress.done(r)
                yield r
        return
    import multiprocessing

    # load the reader and the detector here, once: forked workers inherit them (each
    # worker would otherwise import numpy, soundfile and the detector for itself)
    import dsp.audiofile  # noqa: F401
    tool.analyser(1)
    ctx = multiprocessing.get_context("fork")
    # Pool, not concurrent.futures: terminate() stops the workers at once on Ctrl-C
    # or a closed pipe; results come as they finish and are put back in order here.
    with ctx.Pool(min(jobs, len(work)), initializer=_worker_init) as pool:
        ready: dict[int, list[FileResult]] = {}
        nxt = 0
        for i, results in pool.imap_unordered(_run_indexed,
                                              [(tool, i, paths, split) for i, paths in enumerate(work)]):
            ready[i] = results
            if progress:
                for r in results:
                    progress.done(r)
            while nxt in ready:
                yield from ready.pop(nxt)
                nxt += 1


def _run_indexed(job: tuple[Tool, int, list[str], bool]) -> tuple[int, list[FileResult]]:
    tool, i, paths, split = job
    return i, _run_task(tool, paths, split)


class Progress:
    """`files done/total, audio hours, ETA` on one stderr line (only on a terminal)."""

    def __init__(self, files: list[str], stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.total = len(files)
        self.count = 0
        self.audio_done = 0.0
        self.audio_total = 0.0
        self.t0 = time.monotonic()
        self._last = 0.0
        from dsp.audiofile import AudioFileError, AudioStream
        for p in files:  # headers only: the total audio is what the ETA is measured in
            try:
                with AudioStream(p) as st:
                    self.audio_total += st.seconds * st.channels
            except (AudioFileError, OSError):
                pass
        self._draw(force=True)

    def done(self, r: FileResult) -> None:
        self.count += 1
        self.audio_done += r.seconds * r.channels
        self._draw(force=self.count == self.total)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        el = now - self.t0
        eta = "--:--"
        if self.audio_done > 0 and self.audio_total > self.audio_done:
            left = el * (self.audio_total - self.audio_done) / self.audio_done
            eta = f"{int(left // 60):d}:{int(left % 60):02d}"
        elif self.count == self.total:
            eta = "0:00"
        self.stream.write(f"\r{self.count}/{self.total} files  "
                          f"{self.audio_done / 3600:.2f}/{self.audio_total / 3600:.2f} h audio  "
                          f"ETA {eta}   ")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r" + " " * 72 + "\r")
        self.stream.flush()


# ---------------------------------------------------------------- the command line

class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, with the terminal width found without importing shutil.

    argparse builds a formatter for every add_argument() and its default asks
    shutil for the width: shutil (with zlib, bz2 and lzma) loaded at every
    start only to parse a command line. Same width rule: $COLUMNS, else the
    terminal's, else 80; minus 2.
    """

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _terminal_columns() -> int:
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):  # no stdout, or not a terminal
        return 80


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The options every archive tool shares."""
    ap.add_argument("paths", nargs="+", metavar="PATH",
                    help="recordings (WAV, FLAC or anything libsndfile reads; any sample rate) "
                         "or directories (searched recursively)")
    ap.add_argument("--json", action="store_true",
                    help="one JSON object per line, each naming its file")
    ap.add_argument("--glob", default="*.wav", metavar="PATTERN",
                    help="file names to take from directories (default *.wav; case ignored)")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                    help="files analysed at once, one process each (default: every core)")
    ap.add_argument("--no-split", action="store_true",
                    help="do not cut long channels into segments run side by side "
                         "(same results, slower)")


_json = json.JSONEncoder(ensure_ascii=False).encode  # one encoder for every row


def _one_blas_thread() -> None:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def parse(ap: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace | int:
    """Parsed arguments, or the exit status argparse asked for (2 usage, 0 --help).

    Also limits BLAS to one thread per process before numpy loads (processes
    are the parallelism here; OpenBLAS would otherwise start a thread per core
    at import, which costs start-up time and CPU in every worker).
    """
    _one_blas_thread()
    try:
        return ap.parse_args(argv)
    except SystemExit as exc:
        return EXIT_ERROR if exc.code not in (0, None) else 0


def main(tool: Tool, args: argparse.Namespace, prog: str) -> int:
    """Run `tool` over args.paths and print; returns the exit status."""
    _one_blas_thread()
    if args.jobs < 1:
        print(f"{prog}: -j must be at least 1", file=sys.stderr)
        return EXIT_ERROR
    files = expand_paths(args.paths, args.glob)
    if not files:
        print(f"{prog}: no files matching {args.glob!r} under {' '.join(args.paths)}",
              file=sys.stderr)
        return EXIT_ERROR
    many = len(files) > 1 or any(os.path.isdir(p) for p in args.paths)
    width = min(60, max(len(f) for f in files))  # the file column of the table
    progress = Progress(files) if sys.stderr.isatty() else None
    errors = found = 0
    audio = 0.0
    header_done = False
    try:
        for r in run_files(tool, files, args.jobs, not args.no_split, progress):
            audio += r.seconds * r.channels
            if progress:
                progress.stream.write("\r" + " " * 72 + "\r")
            if r.error:
                errors += 1
                print(f"{prog}: {r.path}: {r.error}", file=sys.stderr)
            for w in r.warnings:
                print(f"{prog}: {r.path}: {w}", file=sys.stderr)
            if r.error:
                continue
            found += len(r.rows)
            if args.json:
                if r.rows:  # one write per file; the file name encoded once
                    head = '{"file": ' + _json(r.path) + ", "
                    print("\n".join(head + tool.json_row(row)[1:] for row in r.rows))
            else:
                line = tool.file_line(r)
                if line is not None:
                    print(line)
                if r.rows and not header_done and tool.table_header():
                    print((f"{'file':<{width}}  " if many else "") + tool.table_header())
                    header_done = True
                for row in r.rows:
                    print((f"{r.path:<{width}}  " if many else "") + tool.table_row(row))
            sys.stdout.flush()
            if progress:
                progress._draw(force=True)
    except BrokenPipeError:  # `voiceboard dtmf dir | head`: not an error
        sys.stdout = open(os.devnull, "w")
    finally:
        if progress:
            progress.close()
    if not found and not errors:
        n = len(files)
        print(f"{prog}: {tool.nothing} ({n} file{'s' if n != 1 else ''}, "
              f"{audio / 3600:.2f} channel-hours of audio)", file=sys.stderr)
    return tool.exit_status(found, errors)
