"""The predictflow console: executions state by state, dead letters and replay, uploads and
predictions, in a browser, for the local stack and a deployed one alike.

    predictflow console [--local | --stack-name NAME] [--port N] [--open] [--host H]

Framework: Flask (with Werkzeug's threaded server and Jinja2 templates). It is already
installed, pinned, as part of moto[server], which the local stack needs, so the console adds
no dependency; it is maintained by the Pallets project, does server-rendered pages with
autoescaping templates well, and its test client lets the security checks run without a
browser. The pages are server-rendered; a little plain JavaScript (static/console.js, no
library, no build step) polls the executions list, opens a state's detail and uploads files.
The graph is laid out in Python and drawn as inline SVG (graph.py). Nothing is fetched from
a CDN: the console works offline.

Security (app.py): loopback only unless --host; a one-time token in the printed address sets
an HttpOnly SameSite=Strict cookie, and no request is answered without it; every change is a
POST with a CSRF token; no CORS headers; a strict Content-Security-Policy; credentials are
never shown (the console uses the caller's own profile through the CLI's Aws context).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from predictflow.console.app import create_app, new_token

LOOPBACK = "127.0.0.1"


@dataclass
class Console:
    """A console being served: its address (with the token) and its server."""

    url: str
    server: Any
    thread: threading.Thread | None = None

    def stop(self) -> None:
        self.server.shutdown()
        if self.thread is not None:
            self.thread.join(timeout=5)


def serve(aws: Any, *, host: str = LOOPBACK, port: int = 8765, token: str | None = None,
          background: bool = False) -> Console:  # fmt: skip
    """Serve the console for `aws`'s stack on host:port (port 0: any free port). In the
    background, a daemon thread serves it; else the caller runs `server.serve_forever()`."""
    from werkzeug.serving import make_server

    token = token or new_token()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app: dict[str, Any] = {}

    def dispatch(environ: Any, start_response: Any) -> Any:
        return app["console"](environ, start_response)

    server = make_server(host, port, dispatch, threaded=True)
    bound = server.socket.getsockname()[1]
    # On loopback, the Host header must name this address (a page elsewhere that rebinds
    # its name to 127.0.0.1 gets 403); on another --host, the token alone guards it.
    hosts = {f"{LOOPBACK}:{bound}", f"localhost:{bound}"} if host == LOOPBACK else set()
    app["console"] = create_app(aws, token, hosts=hosts)
    shown = LOOPBACK if host in ("0.0.0.0", "::") else host  # noqa: S104 - only the address printed
    console = Console(f"http://{shown}:{bound}/?token={token}", server)
    if background:
        console.thread = threading.Thread(
            target=server.serve_forever, name="predictflow-console", daemon=True
        )
        console.thread.start()
    return console


__all__ = ["Console", "create_app", "new_token", "serve"]
