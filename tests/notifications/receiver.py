"""A webhook receiver on the loopback, recording what it is sent."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, status: int = 200, delay: float = 0.0, hold: threading.Event | None = None):
        """``delay``: seconds before answering; ``hold``: answer only once it is set."""
        self.status, self.delay, self.hold = status, delay, hold
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.delay:
                    time.sleep(receiver.delay)
                if receiver.hold is not None:
                    receiver.hold.wait(60)
                receiver.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class DrippingReceiver:
    """A receiver that answers one byte at a time, each well within a
    socket timeout, so that only a limit on the whole attempt stops it.
    ``where``: "headers" drips the status line and headers, "body" the body."""

    def __init__(self, where: str, every: float = 0.1, total: float = 5.0):
        import socket

        self.where, self.every, self.total = where, every, total
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _drip(self, conn, data: bytes) -> None:
        deadline = time.monotonic() + self.total
        for i in range(len(data)):
            if self.stop.is_set() or time.monotonic() > deadline:
                return
            conn.sendall(data[i : i + 1])
            time.sleep(self.every)

    def _serve(self):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            try:
                conn.recv(65536)
                head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Pad-%d: 1\r\n" % i for i in range(90))
                head += b"Content-Length: 100000\r\n\r\n"
                if self.where == "headers":
                    self._drip(conn, head)
                else:
                    conn.sendall(head)
                    self._drip(conn, b"x" * 100000)
            except OSError:
                pass

    def close(self):
        self.stop.set()
        self.listener.close()


class FloodingReceiver:
    """A receiver whose answer never ends: 200, then data as fast as the
    connection takes it, until the sender hangs up. ``sent``: bytes it got out."""

    def __init__(self, limit: int = 256 * 1024 * 1024):
        import socket

        self.limit, self.sent = limit, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.finished = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % self.limit)
                block = b"x" * 65536
                while self.sent < self.limit:
                    conn.sendall(block)
                    self.sent += len(block)
            except OSError:
                pass
            finally:
                self.finished.set()

    def close(self):
        self.listener.close()
