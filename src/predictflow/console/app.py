"""The console's Flask application: the token gate, CSRF, and the response headers.

    app = create_app(aws, token)

Every request needs the session cookie, which only the one-time token sets: the first
request carries `?token=...`, gets an HttpOnly, SameSite=Strict cookie and is redirected to
the same address without the token (so it leaves no trace in the history or a Referer).
A request without the cookie gets 403, whatever it asks for, static files included.
State-changing requests are POSTs carrying a CSRF token (a form field or the
`X-CSRF-Token` header) that only a page of the console knows. The Host header must name
the address the console listens on (no DNS rebinding). No CORS headers are ever sent.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from flask import Flask, Response, abort, g, redirect, request

from predictflow.cli.aws import Aws

COOKIE: Final = "predictflow_console"
CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_FIELD: Final = "csrf_token"
MAX_UPLOAD_BYTES: Final = 512 * 1024 * 1024
HERE: Final = Path(__file__).resolve().parent

SECURITY_HEADERS: Final = {
    # Scripts and styles only from the console itself: nothing inline, nothing from a CDN.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def new_token() -> str:
    return secrets.token_urlsafe(24)


def create_app(aws: Aws, token: str, *, hosts: Iterable[str] = ()) -> Flask:
    """The console for the stack `aws` names. `token` opens it; `hosts` are the Host header
    values it answers (empty: any, for tests)."""
    app = Flask(
        "predictflow.console",
        template_folder=str(HERE / "templates"),
        static_folder=str(HERE / "static"),
    )
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES,
        SECRET_KEY=secrets.token_bytes(32),  # signs the flash messages' cookie; new each start
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    # The session cookie's value: derived from the token, so the token itself is never
    # stored by the browser; the CSRF token is another derivation, known only to pages.
    session_value = hmac.new(token.encode(), b"session", "sha256").hexdigest()
    csrf_value = hmac.new(token.encode(), b"csrf", "sha256").hexdigest()
    allowed_hosts = frozenset(hosts)
    # Made now, in one thread: the server's threads then share them (boto3 clients are
    # thread-safe, their creation is not). A missing stack fails here, in one line.
    for service in ("stepfunctions", "s3", "dynamodb"):
        aws.client(service)
    aws.results  # noqa: B018 - resolves the stack's names
    app.extensions["predictflow.aws"] = aws
    app.extensions["predictflow.csrf"] = csrf_value

    @app.before_request
    def gate() -> Any:
        if allowed_hosts and request.host not in allowed_hosts:
            abort(403, "this console answers only to its own address")
        given = request.args.get("token")
        if given is not None:
            if not hmac.compare_digest(given, token):
                abort(403, "wrong token: use the address the console printed when it started")
            target = request.path + _without_token(request.query_string.decode())
            response = redirect(target, code=303)
            response.set_cookie(COOKIE, session_value, httponly=True, samesite="Strict", path="/")
            return response
        cookie = request.cookies.get(COOKIE, "")
        if not hmac.compare_digest(cookie, session_value):
            abort(403, "open the console with the address (and its token) it printed when it started")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD, "")
            if not hmac.compare_digest(sent, csrf_value):
                abort(403, "missing or wrong CSRF token: reload the page and try again")
        g.csrf_token = csrf_value
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        for name in list(response.headers.keys()):
            if name.lower().startswith("access-control-"):
                del response.headers[name]
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.errorhandler(403)
    def forbidden(error: Any) -> tuple[str, int, dict[str, str]]:
        return f"403 Forbidden: {error.description}\n", 403, {"Content-Type": "text/plain; charset=utf-8"}

    from predictflow.console.views import views

    app.register_blueprint(views)
    return app


def _without_token(query: str) -> str:
    kept = [part for part in query.split("&") if part and not part.startswith("token=")]
    return "?" + "&".join(kept) if kept else ""
