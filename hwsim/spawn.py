"""Run `python -m hwsim` as a separate process: start it, wait until it is ready, stop it.

A test, a bench or `voiceboard demo` wants a simulated card that is already
there, the way a real one would be: a process of its own serving its boards.
hwsim writes its --ready-file (JSON: boards and URIs, clock, simulated start)
once every board exists, and removes it on exit; SIGTERM is a clean shutdown
(calls closed, shared memory unlinked, report written).

    with HwsimProcess("hw.toml", ready=work / "ready.json", log=work / "hwsim.log") as hw:
        uri = hw.info["boards"]["hotline"]      # started and ready; stopped on leaving
    hw = spawn_hwsim("hw.toml", ready=..., log=...)  # the same, stopped by hw.stop()

Failures say why: `HwsimExited` (it exited before it was ready: its exit
status and the tail of its log) or `HwsimNotReady` (no ready file in time).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self

TAIL_LINES = 20        # log lines an error message quotes


class HwsimError(RuntimeError):
    """hwsim did not become ready."""


class HwsimExited(HwsimError):
    """hwsim exited before it was ready (bad config, board already served, ...)."""

    def __init__(self, message: str, returncode: int, tail: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.tail = tail


class HwsimNotReady(HwsimError):
    """hwsim is running but wrote no ready file in time."""


class Stopped(NamedTuple):
    """How stop_process ended a process."""
    returncode: int | None     # negative: the signal that ended it; None: still there after SIGKILL
    killed: bool               # SIGTERM was not enough: it got SIGKILL


def stop_process(proc: subprocess.Popen, timeout: float = 30.0, kill_timeout: float = 10.0) -> Stopped:
    """SIGTERM, wait up to `timeout` s, then SIGKILL and wait up to `kill_timeout` s
    (any process: the servers the tests run beside hwsim too). A no-op if it has exited."""
    if proc.poll() is not None:
        return Stopped(proc.returncode, False)
    proc.send_signal(signal.SIGTERM)
    try:
        return Stopped(proc.wait(timeout), False)
    except subprocess.TimeoutExpired:
        proc.kill()
    try:
        return Stopped(proc.wait(kill_timeout), True)
    except subprocess.TimeoutExpired:
        return Stopped(None, True)


def log_tail(path: Path | None, lines: int = TAIL_LINES) -> str:
    """The last non-blank lines of a log, indented for an error message ('' if none)."""
    if path is None:
        return ""
    try:
        text = [ln for ln in Path(path).read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return "".join(f"\n  {ln}" for ln in text[-lines:])


class HwsimProcess:
    """One `python -m hwsim` process (not started until `start()`).

    `log`: hwsim's stderr goes there (and its stdout too with
    `stdout_to_log`; otherwise stdout is discarded); None leaves both as
    this process's. `cpus`: pin hwsim to these CPUs. `args`: more hwsim
    options (e.g. ["--seed", "3"]). `env`, `cwd`: as for subprocess."""

    def __init__(self, config: str | os.PathLike[str], *, ready: str | os.PathLike[str],
                 scenario: str | os.PathLike[str] | None = None, clock: str = "lockstep",
                 report: str | os.PathLike[str] | None = None, log: str | os.PathLike[str] | None = None,
                 stdout_to_log: bool = False, args: list[str] | tuple[str, ...] = (),
                 env: dict[str, str] | None = None, cwd: str | os.PathLike[str] | None = None,
                 cpus: set[int] | None = None) -> None:
        self.ready = Path(ready)
        self.log = Path(log) if log is not None else None
        self.report = Path(report) if report is not None else None
        self.argv = [sys.executable, "-m", "hwsim", "--config", str(config)]
        if scenario is not None:
            self.argv += ["--scenario", str(scenario)]
        self.argv += ["--clock", clock, "--ready-file", str(self.ready)]
        if report is not None:
            self.argv += ["--report", str(report)]
        self.argv += list(args)
        self.stdout_to_log = stdout_to_log
        self.env = env
        self.cwd = cwd
        self.cpus = cpus
        self.popen: subprocess.Popen | None = None
        self.info: dict[str, Any] | None = None     # the ready file's JSON, once ready
        self.killed = False                         # stop() had to SIGKILL it

    # ---------------------------------------------------------------- start / ready
    def start(self) -> Self:
        """Start the process (a stale ready file from an earlier run is removed first)."""
        if self.popen is not None:
            raise HwsimError("hwsim already started")
        self.ready.unlink(missing_ok=True)
        cpus = self.cpus
        # pinned before exec, so every thread hwsim starts (numpy's too) inherits the CPUs
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        if self.log is None:
            self.popen = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd,
                                          preexec_fn=pin)  # noqa: PLW1509
        else:
            with open(self.log, "w") as logf:     # the child keeps its own copy
                self.popen = subprocess.Popen(
                    self.argv, stdout=logf if self.stdout_to_log else subprocess.DEVNULL,
                    stderr=subprocess.STDOUT if self.stdout_to_log else logf,
                    env=self.env, cwd=self.cwd, preexec_fn=pin)  # noqa: PLW1509
        return self

    def wait_ready(self, timeout: float = 60.0, poll: float = 0.02) -> dict[str, Any]:
        """Wait for the ready file; its JSON (boards, clock, start). Raises HwsimExited
        if hwsim exits first, HwsimNotReady after `timeout` s (hwsim is left running)."""
        proc = self._proc()
        deadline = time.monotonic() + timeout
        while True:
            if self.ready.exists():
                try:
                    self.info = json.loads(self.ready.read_text())
                    return self.info
                except (OSError, json.JSONDecodeError):
                    pass        # hwsim replaces it atomically; an editor or a stale copy might not
            if proc.poll() is not None:
                tail = log_tail(self.log)
                raise HwsimExited(f"hwsim exited with status {proc.returncode} before it was ready"
                                  + (f"; its log {self.log}:{tail}" if tail else
                                     f" (log {self.log} is empty)" if self.log else ""),
                                  proc.returncode, tail)
            if time.monotonic() > deadline:
                raise HwsimNotReady(f"hwsim not ready after {timeout:.0f} s (no {self.ready})"
                                    + (f"; its log {self.log}:{log_tail(self.log)}" if self.log else ""))
            time.sleep(poll)

    # ---------------------------------------------------------------- running
    def _proc(self) -> subprocess.Popen:
        if self.popen is None:
            raise HwsimError("hwsim not started")
        return self.popen

    @property
    def pid(self) -> int:
        return self._proc().pid

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode if self.popen is not None else None

    def poll(self) -> int | None:
        """The exit status if it has exited, else None."""
        return self._proc().poll()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def send_signal(self, sig: int) -> None:
        """A signal if it is still running (SIGSTOP/SIGCONT to hold its clock, ...)."""
        if self.alive():
            self._proc().send_signal(sig)

    # ---------------------------------------------------------------- stop
    def stop(self, timeout: float = 30.0, kill_timeout: float = 10.0) -> int | None:
        """SIGTERM (hwsim closes its calls, writes its report, unlinks its boards), wait up to
        `timeout` s, then SIGKILL (`killed` is set). Returns the exit status; a no-op if it
        already exited or never started."""
        if self.popen is None:
            return None
        stopped = stop_process(self.popen, timeout, kill_timeout)
        self.killed = self.killed or stopped.killed
        return stopped.returncode

    def __enter__(self) -> Self:
        """Started and ready (stopped again if it does not get ready)."""
        if self.popen is None:
            self.start()
        if self.info is None:
            try:
                self.wait_ready()
            except BaseException:
                self.stop()
                raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def spawn_hwsim(config: str | os.PathLike[str], *, ready: str | os.PathLike[str],
                timeout: float = 60.0, **kwargs: Any) -> HwsimProcess:
    """Start hwsim and wait until it is ready (HwsimProcess's arguments); stopped again
    if it does not become ready, so a failed spawn leaves no process behind."""
    hw = HwsimProcess(config, ready=ready, **kwargs).start()
    try:
        hw.wait_ready(timeout)
    except BaseException:
        hw.stop()
        raise
    return hw
