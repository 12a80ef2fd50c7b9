"""The prediction API on the local stack: what API Gateway does in front of the real handler.

moto stores REST APIs but runs no AWS_PROXY integration, so the local stack serves the APIs of
the deployed template itself. The deployer hands this module the API Gateway resources
(`LocalApis.creators`): a RestApi's resolved OpenAPI body gives its routes (method, path, the
function its `x-amazon-apigateway-integration` names), its request models and its gateway
responses; a Stage gives the URL's first segment. `ApiServer` then answers HTTP on 127.0.0.1:

    POST http://127.0.0.1:<port>/<stage>/predict  ->  proxy event  ->  LambdaInvoker  ->  response

as API Gateway would: a body against the route's model is refused with the template's
BAD_REQUEST_BODY response (validated with jsonschema, which the SAM translator already
needs), an unknown route with MISSING_AUTHENTICATION_TOKEN, a body over 10 MB with
REQUEST_TOO_LARGE, a failed invocation with a 502. Not reproduced: IAM (SigV4) authorization,
API keys, usage plans and throttles; the deployment notes say so once.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

LOG = logging.getLogger("predictflow.local")
GATEWAY_MAX_BODY: Final = 10 * 1024 * 1024
Creator = Callable[..., tuple[str, dict[str, str]]]
Invoke = Callable[[str, Any], tuple[bytes, bool]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function_arn: str
    model: dict[str, Any] | None
    """The JSON schema the gateway validates the body against (with the API's definitions)."""


@dataclass
class LocalApi:
    api_id: str
    name: str
    routes: list[Route]
    gateway_responses: dict[str, Any]
    stage: str = ""
    definitions: dict[str, Any] = field(default_factory=dict)

    def route(self, method: str, path: str) -> Route | None:
        return next((r for r in self.routes if r.method == method and _matches(r.path, path)), None)


def _matches(template: str, path: str) -> bool:
    pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


def _integration_arn(uri: Any) -> str:
    # arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<function arn>/invocations
    match = re.search(r"/functions/(.+)/invocations$", str(uri))
    if match is None:
        raise ValueError(f"not a Lambda proxy integration: {uri}")
    return match.group(1)


class LocalApis:
    """The deployer's creators for API Gateway resources, and the APIs they describe."""

    def __init__(self) -> None:
        self.apis: dict[str, LocalApi] = {}

    def creators(self) -> dict[str, Creator]:
        return {
            "AWS::ApiGateway::RestApi": self._rest_api,
            "AWS::ApiGateway::Stage": self._stage,
            "AWS::ApiGateway::Deployment": self._accepted,
            "AWS::ApiGateway::ApiKey": self._accepted,
            "AWS::ApiGateway::UsagePlan": self._accepted,
            "AWS::ApiGateway::UsagePlanKey": self._accepted,
        }

    def _rest_api(
        self, logical: str, props: dict[str, Any], stack: str, _: Any, deployment: Any
    ) -> tuple[str, dict[str, str]]:
        body = props.get("Body") or {}
        api_id = secrets.token_hex(5)
        routes = []
        for path, item in (body.get("paths") or {}).items():
            for method, operation in item.items():
                integration = operation.get("x-amazon-apigateway-integration") or {}
                if integration.get("type") != "aws_proxy":
                    raise ValueError(
                        f"{logical} {method.upper()} {path}: only Lambda proxy integrations run locally"
                    )
                model = next(
                    (p.get("schema") for p in operation.get("parameters", []) if p.get("in") == "body"), None
                )
                validator = operation.get("x-amazon-apigateway-request-validator")
                checks_body = bool(
                    (body.get("x-amazon-apigateway-request-validators") or {})
                    .get(validator or "", {})
                    .get("validateRequestBody")
                )
                routes.append(
                    Route(
                        method.upper(),
                        path,
                        _integration_arn(integration["uri"]),
                        model if checks_body else None,
                    )
                )
        self.apis[api_id] = LocalApi(
            api_id,
            str(props.get("Name") or logical),
            routes,
            body.get("x-amazon-apigateway-gateway-responses") or {},
            definitions=body.get("definitions") or {},
        )
        deployment.notes.append(
            f"{logical}: served by the local API bridge; IAM authorization, API keys, usage plans and "
            "throttles are not checked locally (they are on AWS)"
        )
        return api_id, {"RootResourceId": secrets.token_hex(5)}

    def _stage(self, logical: str, props: dict[str, Any], *_: Any) -> tuple[str, dict[str, str]]:
        self.apis[str(props["RestApiId"])].stage = str(props["StageName"])
        return str(props["StageName"]), {}

    def _accepted(self, logical: str, *_: Any) -> tuple[str, dict[str, str]]:
        return f"{logical}-{secrets.token_hex(4)}", {}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Gateway:
    """API Gateway's part of a request: route, validate, build the proxy event, shape the answer."""

    def __init__(self, api: LocalApi, invoke: Invoke) -> None:
        self.api = api
        self._invoke = invoke
        self._validators: dict[tuple[str, str], Any] = {}

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Answer:
        path, _, query = raw_path.partition("?")
        prefix = f"/{self.api.stage}"
        if not (path == prefix or path.startswith(prefix + "/")):
            return self._gateway_response("MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token")
        resource_path = path[len(prefix) :] or "/"
        route = self.api.route(method, resource_path)
        if route is None:
            return self._gateway_response("MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token")
        if len(body) > GATEWAY_MAX_BODY:
            return self._gateway_response("REQUEST_TOO_LARGE", 413, "Request Too Long")
        media = headers.get("content-type", "application/json").split(";", 1)[0].strip().lower()
        if route.model is not None and media == "application/json" and not self._valid(route, body):
            return self._gateway_response("BAD_REQUEST_BODY", 400, "Invalid request body")
        event = self._event(route, method, resource_path, path, query, headers, body)
        payload, errored = self._invoke(route.function_arn, event)
        if errored:
            return self._gateway_response("DEFAULT_5XX", 502, "Internal server error", "INTEGRATION_FAILURE")
        return self._proxy_answer(json.loads(payload))

    def _valid(self, route: Route, body: bytes) -> bool:
        import jsonschema  # type: ignore[import-untyped]

        key = (route.method, route.path)
        validator = self._validators.get(key)
        if validator is None:
            schema = dict(route.model or {}) | {"definitions": self.api.definitions}
            validator = self._validators[key] = jsonschema.Draft4Validator(schema)
        try:
            document = json.loads(body or b"null")
        except ValueError:
            return False
        return bool(validator.is_valid(document))

    def _event(
        self,
        route: Route,
        method: str,
        resource_path: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
    ) -> dict[str, Any]:
        from urllib.parse import parse_qs

        params = parse_qs(query) if query else {}
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            import base64

            text, encoded = base64.b64encode(body).decode(), True
        return {
            "resource": route.path,
            "path": resource_path,
            "httpMethod": method,
            "headers": dict(headers),
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in params.items()} or None,
            "multiValueQueryStringParameters": params or None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": route.path,
                "httpMethod": method,
                "path": path,
                "stage": self.api.stage,
                "requestId": str(uuid.uuid4()),
                "accountId": "123456789012",
                "apiId": self.api.api_id,
                "protocol": "HTTP/1.1",
                "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("user-agent", "")},
                "requestTimeEpoch": int(time.time() * 1000),
            },
            "body": text if body else None,
            "isBase64Encoded": encoded,
        }

    @staticmethod
    def _proxy_answer(response: Any) -> Answer:
        if not isinstance(response, dict) or "statusCode" not in response:
            return Answer(502, {"Content-Type": "application/json"}, b'{"message":"Internal server error"}')
        headers = {k: str(v) for k, v in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(map(str, values))
        body = response.get("body") or ""
        if response.get("isBase64Encoded"):
            import base64

            data = base64.b64decode(body)
        else:
            data = str(body).encode()
        return Answer(int(response["statusCode"]), headers, data)

    def _gateway_response(
        self, kind: str, status: int, message: str, response_type: str | None = None
    ) -> Answer:
        """The template's gateway response for `kind` (or DEFAULT_4XX/5XX), as API Gateway renders it."""
        configured = self.api.gateway_responses
        family = "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX"
        spec = configured.get(kind) or configured.get(family) or {}
        template = (spec.get("responseTemplates") or {}).get("application/json")
        if template is None:
            text = json.dumps({"message": message})
        else:
            text = (
                template.replace("$context.error.messageString", json.dumps(message))
                .replace("$context.error.message", message)
                .replace("$context.error.responseType", response_type or kind)
            )
        return Answer(
            int(spec.get("statusCode", status)), {"Content-Type": "application/json"}, text.encode()
        )


class ApiServer:
    """Serves one local API over HTTP/1.1 on 127.0.0.1 (keep-alive, no Nagle delay)."""

    def __init__(self, gateway: Gateway, port: int = 0) -> None:
        self.gateway = gateway

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                try:
                    answer = gateway.handle(self.command, self.path, headers, body)
                except Exception:
                    LOG.exception("local API bridge failed")
                    answer = Answer(
                        500, {"Content-Type": "application/json"}, b'{"message":"Internal server error"}'
                    )
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                LOG.debug("api %s", format % args)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-api", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.gateway.api.stage}"

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
