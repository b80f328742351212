"""What a renter asks a node to run (docs/rules.md §4): the image, an
optional command, environment variables (some of them secret) and the TCP
ports to expose, checked once here whichever way they arrive (the rent
form, the API, a failover copying them to the replacement node).

Secrets: a variable marked secret is stored for the node's agent alone.
``public_env`` is the only view of the environment that pages, API answers
and logs get; it shows a secret's name, never its value.
"""

import re
import shlex
from dataclasses import dataclass, field

from django.utils.translation import gettext

from .errors import RentalError
from .models import Rental, Workload, WorkloadEvent, WorkloadState
from .workload_templates import BY_SLUG

# registry[:port]/path[:tag][@sha256:digest], the Docker reference grammar, simplified.
IMAGE_RE = re.compile(
    r"^(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]{1,5})?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_COMMAND_CHARS = 2_000
MAX_COMMAND_ARGS = 64
MAX_ENV = 64
MAX_ENV_VALUE = 4_096
MAX_PORTS = 16
SECRET_MASK = "••••••"


class WorkloadError(RentalError):
    """The workload as asked for cannot run; the message says what to fix."""


@dataclass(frozen=True)
class WorkloadSpec:
    image: str
    command: list[str] | None = None
    env: list[dict] = field(default_factory=list)  # [{"name", "value", "secret"}]
    ports: list[int] = field(default_factory=list)
    template: str = ""


def check_image(image: str) -> str:
    image = (image or "").strip()
    if not image:
        raise WorkloadError(
            gettext("Name the container image to run, e.g. pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime."),
            field="image",
        )
    if len(image) > 255 or not IMAGE_RE.match(image):
        raise WorkloadError(
            gettext(
                "“%(value)s” is not a container image reference. Use registry/name:tag, e.g. "
                "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime."
            )
            % {"value": image[:80]},
            field="image",
        )
    return image


def parse_command(command) -> list[str] | None:
    """An argv list from a list of strings or a shell-like line (quotes
    group words; nothing is expanded). Empty: the image's own command."""
    if command in (None, "", []):
        return None
    if isinstance(command, str):
        if len(command) > MAX_COMMAND_CHARS:
            raise WorkloadError(
                gettext("The command is longer than %(max_command_chars)s characters.")
                % {"max_command_chars": MAX_COMMAND_CHARS},
                field="command",
            )
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise WorkloadError(
                gettext("The command cannot be read: %(exc)s (check its quotes).") % {"exc": exc}, field="command"
            ) from None
    elif isinstance(command, list) and all(isinstance(a, str) for a in command):
        argv = list(command)
    else:
        raise WorkloadError(gettext("The command is a list of strings or one line of text."), field="command")
    if len(argv) > MAX_COMMAND_ARGS or sum(map(len, argv)) > MAX_COMMAND_CHARS:
        raise WorkloadError(
            gettext("The command has more than %(max_command_args)s words or %(max_command_chars)s characters.")
            % {"max_command_args": MAX_COMMAND_ARGS, "max_command_chars": MAX_COMMAND_CHARS},
            field="command",
        )
    if any("\x00" in a for a in argv):
        raise WorkloadError(gettext("The command contains a NUL character."), field="command")
    return argv or None


def parse_env_lines(text: str, *, secret: bool, field_name: str) -> list[dict]:
    """``NAME=value`` lines (blank lines and ``#`` comments skipped)."""
    out = []
    for number, line in enumerate((text or "").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise WorkloadError(gettext("Line %(number)s: write NAME=value.") % {"number": number}, field=field_name)
        out.append({"name": name.strip(), "value": value, "secret": secret})
    return out


def check_env(env) -> list[dict]:
    """[{"name", "value", "secret"}] from that list or a plain {name: value}
    mapping (none secret)."""
    if isinstance(env, dict):
        env = [{"name": k, "value": v, "secret": False} for k, v in env.items()]
    if not isinstance(env, list):
        raise WorkloadError(gettext("The environment is a list of variables."), field="env")
    if len(env) > MAX_ENV:
        raise WorkloadError(gettext("At most %(max_env)s environment variables.") % {"max_env": MAX_ENV}, field="env")
    seen, out = set(), []
    for item in env:
        if not isinstance(item, dict):
            raise WorkloadError(gettext("Each environment variable has a name and a value."), field="env")
        name, value = item.get("name"), item.get("value", "")
        if not isinstance(name, str) or not ENV_NAME_RE.match(name):
            raise WorkloadError(
                gettext("“%(value)s” is not a variable name: letters, digits and _, not starting with a digit.")
                % {"value": str(name)[:40]},
                field="env",
            )
        if not isinstance(value, str) or len(value) > MAX_ENV_VALUE or "\x00" in value:
            raise WorkloadError(
                gettext("%(name)s: the value is text of at most %(max_env_value)s characters.")
                % {"name": name, "max_env_value": MAX_ENV_VALUE},
                field="env",
            )
        if name in seen:
            raise WorkloadError(gettext("%(name)s is set twice.") % {"name": name}, field="env")
        seen.add(name)
        out.append({"name": name, "value": value, "secret": bool(item.get("secret"))})
    return out


def parse_ports(ports) -> list[int]:
    """Container TCP ports from a list of numbers or text such as ``8080, 8888``."""
    if ports in (None, "", []):
        return []
    if isinstance(ports, str):
        words = [w for w in re.split(r"[\s,]+", ports.strip()) if w]
        if not all(w.isascii() and w.isdigit() and len(w) <= 5 for w in words):
            raise WorkloadError(gettext("Ports are numbers from 1 to 65535, separated by commas."), field="ports")
        ports = [int(w) for w in words]
    if not isinstance(ports, list) or not all(type(p) is int for p in ports):
        raise WorkloadError(gettext("Ports are a list of numbers."), field="ports")
    if any(not 1 <= p <= 65535 for p in ports):
        raise WorkloadError(gettext("Ports are numbers from 1 to 65535."), field="ports")
    if len(set(ports)) > MAX_PORTS:
        raise WorkloadError(gettext("At most %(max_ports)s ports.") % {"max_ports": MAX_PORTS}, field="ports")
    return sorted(set(ports))


def build(*, image: str, command=None, env=None, ports=None, template: str = "") -> WorkloadSpec:
    """The one check of a workload request; raises WorkloadError."""
    if template and template not in BY_SLUG:
        raise WorkloadError(gettext("There is no template “%(value)s”.") % {"value": template[:40]}, field="template")
    return WorkloadSpec(
        image=check_image(image),
        command=parse_command(command),
        env=check_env(env or []),
        ports=parse_ports(ports),
        template=template or "",
    )


def from_request(*, template: str = "", image: str = "", command=None, env=None, ports=None) -> WorkloadSpec:
    """What a renter asked for: a template fills in the image, command and
    ports left empty; the result is checked by ``build``."""
    chosen = BY_SLUG.get(template or "")
    if template and chosen is None:
        raise WorkloadError(gettext("There is no template “%(value)s”.") % {"value": template[:40]}, field="template")
    if not image and chosen is None:
        raise WorkloadError(gettext("Pick a template or name a container image."), field="image")
    return build(
        image=image or chosen.image,
        command=command or (list(chosen.command) if chosen and chosen.command else None),
        env=env,
        ports=ports or (list(chosen.ports) if chosen else None),
        template=chosen.slug if chosen else "",
    )


def spec_of(workload: Workload) -> WorkloadSpec:
    return WorkloadSpec(
        image=workload.rental.image,
        command=workload.command,
        env=list(workload.env),
        ports=list(workload.ports),
        template=workload.template,
    )


def save_for(rental: Rental, spec: WorkloadSpec, *, detail: str = "") -> Workload:
    """The rental's workload, scheduled on its node (inside the rental's transaction)."""
    workload = Workload.objects.create(
        rental=rental, template=spec.template, command=spec.command, env=spec.env, ports=spec.ports
    )
    WorkloadEvent.objects.create(
        rental=rental,
        node_id=rental.node_id,
        state=WorkloadState.SCHEDULED,
        detail=detail or "Waiting for the node's agent to start it.",
    )
    return workload


def public_env(env: list[dict]) -> list[dict]:
    """The environment as anyone but the node's agent may see it."""
    return [
        {"name": e["name"], "value": SECRET_MASK if e["secret"] else e["value"], "secret": e["secret"]} for e in env
    ]


def redact(text: str, env: list[dict]) -> str:
    """``text`` with every secret value masked (a container may print its
    own environment into its logs)."""
    for e in env:
        if e["secret"] and len(e["value"]) >= 4:
            text = text.replace(e["value"], SECRET_MASK)
    return text
