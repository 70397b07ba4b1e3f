"""The loopback HTTP server the test peers share (token server, fault proxy, TSA).

:class:`QuietHTTPServer` is a threaded ``http.server`` that prints no handler errors and runs
in a daemon thread (:meth:`QuietHTTPServer.start` / :meth:`QuietHTTPServer.stop`);
:class:`QuietHandler` is the HTTP/1.1 request handler base that logs nothing.
"""

from __future__ import annotations

import http.server
import threading
from typing import Any

__all__ = ["QuietHTTPServer", "QuietHandler"]


class QuietHTTPServer(http.server.ThreadingHTTPServer):
    """A threaded loopback HTTP server that does not print handler errors (test peers share it)."""

    daemon_threads = True
    allow_reuse_address = True
    _thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Handler errors (a client hanging up mid-answer) are part of the tests, not noise."""

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self.server_address[1])

    def start(self, name: str = "loopback-http") -> None:
        """Serve in a daemon thread (0.05 s shutdown poll)."""
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=name,
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, release the port and wait briefly for the serving thread."""
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 request handler base that logs nothing."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """No access log."""
