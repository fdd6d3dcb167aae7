"""A real socket server on 127.0.0.1 for upstream behaviour no well-behaved ASGI app
can produce: one thread per connection, the subclass's ``serve`` speaks the bytes."""

from __future__ import annotations

import socket
import threading


class SocketUpstream:
    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop = True
        self.sock.close()
