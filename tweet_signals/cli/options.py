"""CLI options derived from a flow's parameters model (``SignalsParams`` for ``run``,
``EvaluationParams`` for ``evaluate``): names, defaults and help come from the model, so the
command line, the Prefect UI form and ``prefect.yaml`` cannot disagree.

``params_command`` builds a typer command whose options are the model's fields (``--chunk-size``
for ``chunk_size``, ``--[no-]force`` for booleans, a choice list for ``Literal`` fields) plus the
command's own options; the command body receives the field values given on the command line and
its own options.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import typer
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from tweet_signals.params import SignalsParams

# Fields whose flag is not the field's name (kept as users know them).
FLAG_NAMES = {"run_date": "--date", "queries": "--query", "synthetic_posts": "--synthetic-posts"}


def flag(name: str) -> str:
    return FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def _literal_choices(annotation: Any) -> list[str]:
    """String choices of a ``Literal`` (also inside ``X | Literal[...]``)."""
    if typing.get_origin(annotation) is Literal:
        return [str(a) for a in typing.get_args(annotation)]
    return [c for arg in typing.get_args(annotation) for c in _literal_choices(arg)]


def _option(name: str, field: FieldInfo, default: Any) -> inspect.Parameter:
    """One typer option for a parameters field."""
    annotation = field.annotation
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    help_text = field.description or ""
    if annotation is bool:
        return _param(name, bool, typer.Option(default, f"{flag(name)}/--no-{flag(name)[2:]}", help=help_text))
    if origin is list or (args and typing.get_origin(args[0]) is list):
        # Repeatable; None means "not given", so the model's default applies (shown in the help).
        shown = " ".join(map(str, default)) if default else "none"
        help_text = f"{help_text} (repeatable; default: {shown})"
        return _param(name, list[str] | None, typer.Option(None, flag(name), help=help_text))
    choices = _literal_choices(annotation)
    if origin is Literal:
        typ: Any = annotation  # typer lists and checks the choices
    elif choices:  # e.g. int | Literal["auto"]: given as text, validated by the model
        typ = str
        help_text = f"{help_text} (a number or {', '.join(choices)})"
    elif origin in (types.UnionType, typing.Union):
        typ = args[0] | None if args[0] in (str, int, float) else str | None
    else:
        typ = annotation if annotation in (str, int, float) else str
    value = default if default is None or isinstance(default, str | int | float) else str(default)
    option = typer.Option(value, flag(name), help=help_text, show_default=default is not None)
    return _param(name, typ, option)


def _param(name: str, annotation: Any, option: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


# The command's typer context (typer passes it to a parameter of this type, not as an option).
CONTEXT = "typer_context"


def _typed(context: typer.Context, name: str) -> bool:
    """Whether option ``name`` was given (command line or environment), not left at its default."""
    source = context.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


def params_command(
    app: typer.Typer,
    name: str,
    body: Callable[[dict[str, Any], dict[str, Any]], None],
    *,
    own: Sequence[inspect.Parameter] = (),
    exclude: Iterable[str] = (),
    defaults: dict[str, Any] | None = None,
    only: Iterable[str] | None = None,
    help: str | None = None,
    model: type[BaseModel] = SignalsParams,
) -> None:
    """Register ``name`` on ``app``: options for every field of ``model`` (but ``exclude``, or
    just ``only``), with ``defaults`` overriding the model's, followed by ``own`` options.
    ``body(fields, own_values)`` gets the fields that were given or overridden and the own values."""
    skipped, overrides = set(exclude), defaults or {}
    wanted = list(only) if only is not None else [f for f in model.model_fields if f not in skipped]
    fields = {f: model.model_fields[f] for f in wanted}
    parameters = [
        _option(f, info, overrides.get(f, info.get_default(call_default_factory=True))) for f, info in fields.items()
    ]
    own_names = [p.name for p in own]
    parameters += [*own, inspect.Parameter(CONTEXT, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)]

    def command(**values: Any) -> None:
        # Only what the user typed: an option left at its default must not count as given, or
        # the model could not tell "left out" from "set" (its ``model_fields_set``).
        context = values.pop(CONTEXT)
        given = {f: values[f] for f in fields if values[f] is not None and _typed(context, f)}
        body({**overrides, **given}, {k: values[k] for k in own_names})

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = help or body.__doc__
    app.command(name)(command)


def option(name: str, annotation: Any, default: Any, *flags: str, help: str = "") -> inspect.Parameter:
    """A command's own option (not a parameters field)."""
    return _param(name, annotation, typer.Option(default, *(flags or (flag(name),)), help=help))


def validation_message(error: ValidationError) -> str:
    """A model's refusal as one line naming the flags: ``--pool: Input should be ... ; ...``."""
    parts = []
    for item in error.errors():
        text = str(item["msg"]).removeprefix("Value error, ")
        fields = [str(part) for part in item["loc"] if isinstance(part, str)]
        # Messages of our own validators already name their flag; pydantic's do not.
        prefix = flag(fields[0]) if fields and not text.startswith("--") else ""
        parts.append(f"{prefix}: {text}" if prefix else text)
    return "; ".join(parts)
