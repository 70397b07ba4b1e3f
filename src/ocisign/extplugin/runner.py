"""Running one plugin command: ``notation-<name> <command>``, JSON in, JSON out.

* no shell: the executable is started directly with one argument, the command;
* environment: ocisign's own, minus the registry credentials ocisign reads from it
  (``OCISIGN_USERNAME``/``OCISIGN_PASSWORD``/``NOTATION_USERNAME``/``NOTATION_PASSWORD``) — notation
  passes its environment to plugins (KMS plugins read their cloud credentials there) but a plugin
  has no business with registry passwords;
* a timeout (``OCISIGN_PLUGIN_TIMEOUT`` seconds, default 300): the plugin's process group is killed;
* stdout and stderr are each capped at 64 MiB: a plugin that writes more is killed;
* exit 0: stdout must be one JSON object; otherwise the error response on stderr
  (``{"errorCode", "errorMessage", "errorMetadata"}``) becomes one line naming plugin and command;
* with ``--debug`` (:func:`show_plugin_stderr`) the plugin's stderr is copied to ours.

Every failure raises PluginError (exit code 3).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from ocisign.errors import PluginError

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_OUTPUT",
    "plugin_environment",
    "plugin_timeout",
    "run_command",
    "show_plugin_stderr",
]

#: per stream
MAX_OUTPUT = 64 * 1024 * 1024
DEFAULT_TIMEOUT = 300.0
TIMEOUT_ENV = "OCISIGN_PLUGIN_TIMEOUT"
#: variables never passed to a plugin
WITHHELD_ENV = ("OCISIGN_USERNAME", "OCISIGN_PASSWORD", "NOTATION_USERNAME", "NOTATION_PASSWORD")

_debug_stream: IO[str] | None = None


def show_plugin_stderr(enabled: bool, stream: IO[str] | None = None) -> None:
    """Copy plugins' stderr to ``stream`` (default ``sys.stderr``) when ``enabled`` (``--debug``)."""
    global _debug_stream
    _debug_stream = (stream or sys.stderr) if enabled else None


def plugin_timeout() -> float:
    """Seconds a plugin command may run: ``$OCISIGN_PLUGIN_TIMEOUT`` or :data:`DEFAULT_TIMEOUT`."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        raise PluginError(f"{TIMEOUT_ENV}={text!r} is not a number of seconds") from None
    if not value > 0:
        raise PluginError(f"{TIMEOUT_ENV}={text!r} must be a positive number of seconds")
    return value


def plugin_environment() -> dict[str, str]:
    """The environment a plugin gets (ours without the registry credential variables)."""
    return {k: v for k, v in os.environ.items() if k not in WITHHELD_ENV}


class _Capped(threading.Thread):
    """Reads a pipe to EOF, keeping at most ``limit`` bytes; ``overflow`` is set beyond that."""

    def __init__(self, pipe: IO[bytes], limit: int, on_overflow: Any) -> None:
        super().__init__(daemon=True)
        self.pipe, self.limit, self.on_overflow = pipe, limit, on_overflow
        self.chunks: list[bytes] = []
        self.size = 0
        self.overflow = False

    def run(self) -> None:
        try:
            while True:
                chunk = self.pipe.read(1 << 16)
                if not chunk:
                    return
                if self.size + len(chunk) > self.limit:
                    self.overflow = True
                    self.on_overflow()
                    return
                self.chunks.append(chunk)
                self.size += len(chunk)
        except (OSError, ValueError):
            return

    def data(self) -> bytes:
        return b"".join(self.chunks)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill the plugin and everything it started (it runs in its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


def _error_line(stderr: bytes) -> str | None:
    """``errorCode: errorMessage`` from an error response, None if stderr is not one."""
    try:
        obj = json.loads(stderr.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("errorCode"), str):
        return None
    code, message = obj["errorCode"], obj.get("errorMessage")
    text = f"{code}: {message}" if isinstance(message, str) and message else code
    meta = obj.get("errorMetadata")
    if isinstance(meta, dict) and meta:
        text += " (" + ", ".join(f"{k}={v}" for k, v in sorted(meta.items()) if isinstance(v, str)) + ")"
    return " ".join(text.split())


def _first_line(data: bytes, limit: int = 300) -> str:
    text = data.decode("utf-8", "replace").strip()
    line = text.splitlines()[0] if text else ""
    return line[:limit] + ("…" if len(line) > limit else "")


def run_command(executable: Path, plugin: str, command: str, request: Mapping[str, Any],
                *, timeout: float | None = None) -> dict[str, Any]:
    """Run ``executable command`` with ``request`` as JSON on stdin; the JSON object it answers.

    Raises PluginError (one line naming ``plugin`` and ``command``) when the plugin cannot be
    started, times out, writes more than 64 MiB, exits non-zero, or answers anything but a
    JSON object.
    """
    where = f"plugin {plugin!r} {command}"
    limit = plugin_timeout() if timeout is None else timeout
    data = json.dumps(request, separators=(",", ":")).encode("utf-8")
    try:
        proc = subprocess.Popen(  # a fixed argv, no shell
            [str(executable), command], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=plugin_environment(), close_fds=True, start_new_session=True, shell=False,
        )
    except OSError as exc:
        raise PluginError(f"{where}: cannot run {executable}: {exc.strerror or exc}") from None
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    out = _Capped(proc.stdout, MAX_OUTPUT, lambda: _kill(proc))
    err = _Capped(proc.stderr, MAX_OUTPUT, lambda: _kill(proc))
    out.start()
    err.start()

    def feed() -> None:
        try:
            proc.stdin.write(data)  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError, ValueError):
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    timed_out = False
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill(proc)
        proc.wait()
    except BaseException:
        _kill(proc)
        proc.wait()
        raise
    deadline = time.monotonic() + 5
    for t in (out, err, feeder):
        t.join(max(0.0, deadline - time.monotonic()))
    for pipe in (proc.stdout, proc.stderr):
        pipe.close()
    stderr = err.data()
    if _debug_stream is not None and stderr:
        text = stderr.decode("utf-8", "replace").rstrip("\n")
        for line in text.splitlines():
            _debug_stream.write(f"[plugin {plugin} {command}] {line}\n")
        _debug_stream.flush()
    if timed_out:
        raise PluginError(f"{where}: timed out after {limit:g}s (the plugin was stopped)")
    if out.overflow or err.overflow:
        which = "stdout" if out.overflow else "stderr"
        raise PluginError(f"{where}: wrote more than {MAX_OUTPUT // (1024 * 1024)} MiB to {which} "
                          "(the plugin was stopped)")
    if proc.returncode != 0:
        detail = _error_line(stderr)
        if detail is None:
            how = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
                   else f"exited with code {proc.returncode}")
            first = _first_line(stderr)
            detail = how + (f": {first}" if first else " without an error response")
        raise PluginError(f"{where} failed: {detail}")
    try:
        obj = json.loads(out.data().decode("utf-8"))
    except UnicodeDecodeError:
        raise PluginError(f"{where}: the response on stdout is not UTF-8") from None
    except ValueError as exc:
        raise PluginError(f"{where}: the response on stdout is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise PluginError(f"{where}: the response on stdout is not a JSON object")
    return obj
