"""One place that turns the global options into AWS clients and the stack's names."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click
from click.core import ParameterSource

# The group builds an `Aws` for every command, `predict` included, which talks to no stack:
# botocore and the service modules are imported when a client or the stack's names are first
# wanted, not here (they are a third of `predict`'s start-up otherwise).
if TYPE_CHECKING:
    from predictflow.service.results import Results, StackNames

LOCAL_ENDPOINT = "http://127.0.0.1:4566"
DEFAULT_STACK = "predictflow"
LOCAL_STACK = "predictflow-local"
LOCAL_REGION = "us-east-1"
"""The local stack's region, whatever the environment names: its ARNs and Outputs carry it."""


def local_state_path() -> Path:
    """Where `local up` says which endpoint it serves, so that `--local` finds it on any port."""
    from predictflow.local.template import cache_folder

    return cache_folder() / "local-stack.json"


def write_local_state(endpoint_url: str, ready: bool) -> None:
    path = local_state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"endpoint_url": endpoint_url, "pid": os.getpid(), "ready": ready}
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(state))
    temporary.replace(path)


def clear_local_state() -> None:
    """Forget the state `local up` wrote, if this process wrote it (another may have since)."""
    state = read_local_state()
    if state is not None and state.get("pid") == os.getpid():
        local_state_path().unlink(missing_ok=True)


def read_local_state() -> dict[str, Any] | None:
    """What a running `local up` wrote: endpoint_url and ready; None if none runs."""
    try:
        state = json.loads(local_state_path().read_text())
        os.kill(int(state["pid"]), 0)  # still running? (signal 0 only checks)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if isinstance(state, dict) else None


def local_endpoint() -> str:
    """The endpoint `--local` means: the running `local up`'s, else the default port's."""
    state = read_local_state()
    return str(state["endpoint_url"]) if state else LOCAL_ENDPOINT


@dataclass
class Aws:
    stack_name: str
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def session(self) -> Any:
        import boto3

        session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
        if self.endpoint_url is not None and session.get_credentials() is None:
            # The local stack accepts any credentials; a fresh machine has none.
            session = boto3.session.Session(
                aws_access_key_id="local",
                aws_secret_access_key="local",  # noqa: S106 - a placeholder the local stack accepts
                region_name=self.region,
            )
        return session

    @property
    def region_name(self) -> str:
        return str(self.session.region_name or "us-east-1")

    def client(self, service: str) -> Any:
        if service not in self._clients:
            from botocore.config import Config

            self._clients[service] = self.session.client(
                service,
                endpoint_url=self.endpoint_url,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}),
            )
        return self._clients[service]

    @cached_property
    def names(self) -> StackNames:
        """The stack's Outputs (a deployed stack, or the local stack, which registers its own)."""
        from botocore.exceptions import ClientError

        from predictflow.service.results import StackNames

        try:
            stacks = self.client("cloudformation").describe_stacks(StackName=self.stack_name)["Stacks"]
        except ClientError as error:
            if "does not exist" in str(error):
                starting = self.is_local and _starting(self.endpoint_url)
                if starting:
                    raise click.ClickException(
                        f"the local stack at {self.endpoint_url} is starting; try again once "
                        "`predictflow local up` prints its Outputs"
                    ) from error
                raise click.ClickException(
                    f"no stack named {self.stack_name!r} here; "
                    "deploy it (sam deploy) or name it with --stack-name"
                ) from error
            raise
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        return StackNames.from_outputs(outputs)

    @cached_property
    def results(self) -> Results:
        from predictflow.service.results import Results

        return Results(self.names, self.client("s3"), self.client("dynamodb"))

    @property
    def is_local(self) -> bool:
        return self.endpoint_url is not None


CONNECTION = "predictflow.connection"
"""Where the connection options given so far are kept, in the context tree's shared meta."""
F = TypeVar("F", bound=Callable[..., Any])


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Keep an option's value for `aws_of`: the command line's always (a subcommand's parsed
    last, so overriding the group's), the environment's only if nothing set it before (the
    group reads the same environment; it must not override the group's --region)."""
    assert param.name is not None  # every option here is named
    given = ctx.meta.setdefault(CONNECTION, {})
    source = ctx.get_parameter_source(param.name)
    if value in (None, False):
        return
    if source is ParameterSource.COMMANDLINE or param.name not in given:
        given[param.name] = value


_DECLARATIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (
        ("--stack-name",),
        {"envvar": "PREDICTFLOW_STACK", "help": f"Deployed stack [default: {DEFAULT_STACK}]."},
    ),
    (
        ("--local", "use_local"),
        {"is_flag": True, "help": "Use the local stack `local up` serves (any --port; default 4566)."},
    ),
    (("--endpoint-url",), {"envvar": "AWS_ENDPOINT_URL", "help": "Any AWS-compatible endpoint."}),
    (("--profile",), {"envvar": "AWS_PROFILE", "help": "AWS profile."}),
    (("--region",), {"envvar": "AWS_REGION", "help": "AWS region."}),
)


def connection_options(command: F) -> F:
    """The options that name a stack (--local, --stack-name, --endpoint-url, --profile,
    --region), for the `predictflow` group and for each command that talks to a stack, so
    that they may come before or after the command's name:

        predictflow --local executions        predictflow executions --local

    A command's own value overrides the group's. Put it under `@click.command()` (or
    `@group.command()`), above `@click.pass_context`, and read the stack with `aws_of(ctx)`:

        @click.command()
        @connection_options
        @click.pass_context
        def logs(ctx: click.Context, execution: str) -> None:
            aws = aws_of(ctx)

    The options reach no function parameter; their values wait in the context until
    `aws_of` builds the clients."""
    for names, settings in reversed(_DECLARATIONS):
        command = click.option(*names, expose_value=False, callback=_remember, **settings)(command)
    return command


def aws_of(ctx: click.Context) -> Aws:
    """The stack the connection options name, wherever they were given (built once per
    context; a command's own options make a new one)."""
    given = dict(ctx.meta.get(CONNECTION, {}))
    key = tuple(sorted(given.items()))
    cached = ctx.meta.get(CONNECTION + ".aws")
    if cached is not None and cached[0] == key:
        return cast(Aws, cached[1])
    aws = connect(**given)
    ctx.meta[CONNECTION + ".aws"] = (key, aws)
    return aws


def connect(
    stack_name: str | None = None,
    use_local: bool | None = False,
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
) -> Aws:
    """The Aws the connection options mean."""
    if use_local:
        endpoint_url = endpoint_url or local_endpoint()
        # The local stack lives in one region (its ARNs and Outputs say so); a region the
        # environment names for AWS (AWS_REGION, a profile's) must not send --local elsewhere.
        region = LOCAL_REGION
    custom_endpoint = endpoint_url is not None
    return Aws(
        stack_name=stack_name or (LOCAL_STACK if custom_endpoint else DEFAULT_STACK),
        endpoint_url=endpoint_url,
        profile=profile,
        region=region or (LOCAL_REGION if custom_endpoint else None),
    )


def _starting(endpoint_url: str | None) -> bool:
    state = read_local_state()
    return state is not None and state.get("endpoint_url") == endpoint_url and not state.get("ready")


def explain(error: Exception) -> str | None:
    """One line for the AWS errors users meet, or None for anything else."""
    if "botocore.exceptions" not in sys.modules:
        return None  # nothing imported botocore, so no error can be one of its own
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

    if isinstance(error, NoCredentialsError):
        return "no AWS credentials: set AWS_PROFILE or use --profile, or use --local for the local stack"
    if isinstance(error, NoRegionError):
        return "no AWS region: set AWS_REGION or use --region"
    if isinstance(error, EndpointConnectionError):
        endpoint = error.kwargs.get("endpoint_url", "the endpoint")
        return f"cannot reach {endpoint}: is `predictflow local up` running?"
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"AWS refused {error.operation_name}: {details.get('Code', '')}: {details.get('Message', '')}"
    return None
