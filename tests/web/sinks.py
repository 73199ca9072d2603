"""Real receiving servers for the message tests: an SMTP server (aiosmtpd) and an HTTP
server standing in for an SMS provider, both on loopback, both recording what arrived."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message as EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class MailSink:
    """Every mail the SMTP server accepted, parsed."""

    received: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    host: str = "127.0.0.1"
    port: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [str(m["Message-ID"]) for m in self.received]


def mail_sink() -> Iterator[MailSink]:
    """Run an SMTP server for the length of a test (use as a fixture body)."""
    sink = MailSink()
    with socket.socket() as probe:  # a free port (the controller's own check needs a real one)
        probe.bind(("127.0.0.1", 0))
        sink.port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, ready_timeout=10)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@dataclass
class SmsSink:
    """Every text-message request the fake provider received, and how to answer."""

    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    answer: int = 200
    url: str = ""
    #: Run by the server before it answers, as if the world changed while a text was in flight.
    meanwhile: Callable[[], None] | None = None


def sms_sink() -> Iterator[SmsSink]:
    """Run an HTTP server that accepts POSTed text messages (use as a fixture body)."""
    sink = SmsSink()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if sink.meanwhile is not None:
                sink.meanwhile()
            if sink.answer == 200:
                sink.received.append(json.loads(body))
                sink.headers.append(dict(self.headers))
            self.send_response(sink.answer)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass  # keep test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sink.url = f"http://127.0.0.1:{server.server_address[1]}/sms"
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
