"""Reading small configuration files safely: ``signingkeys.json``, ``config.json``, certificate files.

Reads are bounded, refuse directories and FIFOs (opened non-blocking), and — for files inside
the config directory — refuse symbolic links, as notation does for its configuration files.
Nothing here writes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ocisign.config.configdir import ConfigDir
from ocisign.errors import ConfigError, ContentError

#: configuration and certificate files larger than this are refused
MAX_CONFIG_FILE_SIZE = 4 * 1024 * 1024


def read_regular_file(path: Path, *, max_size: int = MAX_CONFIG_FILE_SIZE, follow: bool = True,
                      missing_ok: bool = False, allow_pipe: bool = False) -> bytes | None:
    """Bytes of the regular file ``path`` (None when absent and ``missing_ok``); ConfigError otherwise.

    ``allow_pipe`` also reads a pipe (``<(…)``, ``/dev/stdin``, a named FIFO) to its end, with the same
    size bound; directories, devices and sockets are still refused.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        if missing_ok and not os.path.islink(path):
            return None
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        if not follow and os.path.islink(path):
            raise ConfigError(f"{path}: is a symbolic link (symlinks are not supported)") from None
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode
        if allow_pipe and stat.S_ISFIFO(mode):
            data = _read_pipe(fd, max_size + 1)
        elif not stat.S_ISREG(mode):
            raise ConfigError(f"{path}: is not a regular file{' or a pipe' if allow_pipe else ''}")
        else:
            data = fh.read(max_size + 1)
    if len(data) > max_size:
        raise ConfigError(f"{path}: larger than {max_size} bytes")
    return data


def _read_pipe(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes of the pipe open (non-blocking) on ``fd``, to its end.

    A named FIFO opened for reading before any writer has opened it reads as end-of-file at once,
    so the descriptor stays non-blocking and ``poll`` waits for data or for the writer's close
    (Linux reports no hang-up on a FIFO until a writer has come and gone), as ``cat`` would wait.
    """
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN)
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        poller.poll()
        try:
            chunk = os.read(fd, min(1 << 16, limit - size))
        except BlockingIOError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_input_file(name: str, *, max_size: int = MAX_CONFIG_FILE_SIZE) -> bytes:
    """A file the user names on the command line: a path, a pipe (``<(…)``) or ``-`` for stdin; bounded."""
    import sys

    if name == "-":
        stdin = getattr(sys.stdin, "buffer", None)
        data = stdin.read(max_size + 1) if stdin is not None else sys.stdin.read(max_size + 1).encode()
        if len(data) > max_size:
            raise ConfigError(f"standard input: larger than {max_size} bytes")
        return bytes(data)
    data = read_regular_file(Path(name), max_size=max_size, allow_pipe=True)
    if data is None:  # pragma: no cover - only with missing_ok; a missing file never reads as empty
        raise ConfigError(f"{name}: no such file")
    return data


def _config_json(config: ConfigDir) -> dict[str, object] | None:
    from ocisign.oci.model import parse_json_object

    path = config.config_json
    data = read_regular_file(path, follow=False, missing_ok=True)
    if data is None:
        return None
    try:
        return parse_json_object(data, where=str(path))
    except ContentError as exc:
        raise ConfigError(f"malformed config.json: {exc}") from None


def config_insecure_registries(config: ConfigDir) -> frozenset[str]:
    """``insecureRegistries`` of ``config.json``: hosts reached over plain HTTP (empty when absent)."""
    obj = _config_json(config)
    value = (obj or {}).get("insecureRegistries")
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{config.config_json}: insecureRegistries must be a list of strings")
    return frozenset(value)


def config_signature_format(config: ConfigDir) -> str | None:
    """``signatureFormat`` of ``config.json`` (None when the file or the member is absent)."""
    value = (_config_json(config) or {}).get("signatureFormat")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{config.config_json}: signatureFormat must be a string")
    return value
