from itertools import groupby

from django.shortcuts import render

from apps.core import parameters as params
from apps.core.models import ParameterChange


def index(request):
    return render(request, "governance/index.html", {"param_count": len(params.DEFINITIONS)})


def parameters(request):
    """Every protocol parameter: value in force, hard bounds, who may change
    it, and its history."""
    values = params.current()
    history = ParameterChange.objects.order_by("key", "-effective_epoch", "-id")
    by_key = {key: list(rows) for key, rows in groupby(history, key=lambda r: r.key)}
    rows = [
        {
            "param": p,
            "value": p.format(values[p.key]),
            "minimum": p.format(p.minimum),
            "maximum": p.format(p.maximum),
            "history": [(r, p.format(r.value)) for r in by_key.get(p.key, [])],
        }
        for p in params.DEFINITIONS.values()
    ]
    return render(request, "governance/parameters.html", {"rows": rows})
