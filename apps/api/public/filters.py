"""Query filters of the public API, validated: a filter that is not a
number, an epoch range that is backwards or too wide, or a kind that does
not exist is a 400 that says so, never an empty or partial answer."""

from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend

from apps.core.numbers import NumberError
from apps.core.numbers import parse_int as parse_number

# One request may ask for at most this many epochs; page through wider ranges.
MAX_EPOCH_SPAN = 10_000
MAX_INT = 10**15


def parse_int(params, name: str) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    # Plain ASCII digits only: str.isdigit() passes "²" (which int() then
    # refuses: a 500) and "\u0661" or "\uff11" (which int() reads as 1).
    try:
        return parse_number(raw, minimum=0, maximum=MAX_INT)
    except NumberError:
        raise ValidationError({name: [_("Expected a whole number from 0 to %d.") % MAX_INT]}) from None


def epoch_range(params) -> tuple[int | None, int | None]:
    """(first, last) epoch asked for, both inclusive; ``epoch`` means both."""
    exact = parse_int(params, "epoch")
    low, high = parse_int(params, "epoch_from"), parse_int(params, "epoch_to")
    if exact is not None:
        if low is not None or high is not None:
            raise ValidationError({"epoch": [_("Give either epoch, or epoch_from and epoch_to, not both.")]})
        return exact, exact
    if low is not None and high is not None:
        if low > high:
            raise ValidationError({"epoch_to": [_("epoch_to must not be before epoch_from.")]})
        if high - low + 1 > MAX_EPOCH_SPAN:
            raise ValidationError({"epoch_to": [_("Ask for at most %d epochs at a time.") % MAX_EPOCH_SPAN]})
    return low, high


class PublicFilters(BaseFilterBackend):
    """Reads the view's ``epoch_field`` (an epoch range filter),
    ``int_filters`` (name -> lookup) and ``choice_filters`` (name ->
    (lookup, choices))."""

    def filter_queryset(self, request, queryset, view):
        params = request.query_params
        field = getattr(view, "epoch_field", None)
        if field:
            low, high = epoch_range(params)
            if low is not None:
                queryset = queryset.filter(**{f"{field}__gte": low})
            if high is not None:
                queryset = queryset.filter(**{f"{field}__lte": high})
        for name, lookup in getattr(view, "int_filters", {}).items():
            value = parse_int(params, name)
            if value is not None:
                queryset = queryset.filter(**{lookup: value})
        for name, (lookup, choices) in getattr(view, "choice_filters", {}).items():
            value = params.get(name)
            if value in (None, ""):
                continue
            if value not in choices:
                raise ValidationError({name: [_("Unknown value; one of: %s.") % ", ".join(choices)]})
            queryset = queryset.filter(**{lookup: value})
        return queryset

    def get_schema_operation_parameters(self, view):
        def param(name, description, schema):
            return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}

        integer = {"type": "integer", "minimum": 0}
        out = []
        if getattr(view, "epoch_field", None):
            out += [
                param("epoch", "only this epoch", integer),
                param("epoch_from", "first epoch, inclusive", integer),
                param("epoch_to", f"last epoch, inclusive (at most {MAX_EPOCH_SPAN} epochs in all)", integer),
            ]
        for name in getattr(view, "int_filters", {}):
            out.append(param(name, f"only this {name} (id)", integer))
        for name, (_lookup, choices) in getattr(view, "choice_filters", {}).items():
            out.append(param(name, f"only this {name}", {"type": "string", "enum": list(choices)}))
        return out
