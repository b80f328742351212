"""Proposal forms. Values a person types are parsed exactly (Decimal, never
float) into the parameter's integer unit; the services re-check everything."""

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.core import parameters
from apps.core.amounts import display_uath, format_uath
from apps.core.forms import AmountField
from apps.core.numbers import NumberError, parse_scaled
from apps.core.parameter_labels import shown

from .models import Choice
from .services import DESCRIPTION_MAX, TITLE_MAX

UNIT_HINT = {
    "uath": "in ATH",
    "ppm": "in %",
    "ms": "in ms",
    "seconds": "in seconds",
    "epochs": "in epochs",
    "gb": "in GB",
    "mbps": "in Mbps",
    "count": "a whole number",
}


def parse_param_value(param: parameters.Param, text: str) -> int:
    """What a person typed for ``param`` (ATH, percent or a whole number) as
    an integer in the parameter's unit, or a ValidationError saying why not."""
    if param.unit == "uath":
        places, suffixes, finest = 6, ("ATH",), _("ATH has at most six decimals.")
    elif param.unit == "ppm":
        places, suffixes, finest = 4, ("%",), _("Percentages go down to 0.0001%.")
    else:
        places, suffixes, finest = 0, (), _("Enter a whole number.")
    try:
        # Zero is allowed by the parser; the parameter's own bounds decide.
        value = parse_scaled(
            text or "",
            places,
            allow_zero=True,
            suffixes=suffixes,
            what="value",
            example="12",
            too_fine=finest,
            too_large=_("Must be at most %(maximum)s.") % {"maximum": shown(param, param.maximum)},
        )
    except NumberError as exc:
        message = str(exc)
        if message.startswith("Enter a number"):
            message = f"Enter a number {UNIT_HINT.get(param.unit, '')}.".replace("  ", " ")
        raise forms.ValidationError(message) from None
    if not param.minimum <= value <= param.maximum:
        raise forms.ValidationError(
            _("Must be between %(minimum)s and %(maximum)s.")
            % {"minimum": shown(param, param.minimum), "maximum": shown(param, param.maximum)}
        )
    return value


class ProposalForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=TITLE_MAX)
    description = forms.CharField(
        label=_("Description"),
        max_length=DESCRIPTION_MAX,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("Markdown: **bold**, *italic*, lists, links, `code`. HTML is shown as text."),
    )
    deposit = AmountField(label=_("Deposit (ATH)"))

    def __init__(self, *args, min_deposit: int, available: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["deposit"].initial = format_uath(min_deposit, unit=False)
        if available is None:
            hint = _("At least %(minimum)s, locked from your available balance") % {
                "minimum": display_uath(min_deposit)
            }
        else:
            hint = _("At least %(minimum)s, locked from your available balance (you have %(available)s)") % {
                "minimum": display_uath(min_deposit),
                "available": display_uath(available),
            }
        self.fields["deposit"].help_text = (
            hint + ". " + _("Refunded if the vote reaches quorum and is not vetoed, burned otherwise.")
        )
        self.min_deposit = min_deposit

    def clean_deposit(self):
        deposit = self.cleaned_data["deposit"]
        if deposit < self.min_deposit:
            raise forms.ValidationError(
                _("The minimum deposit is %(minimum)s.") % {"minimum": display_uath(self.min_deposit)}
            )
        return deposit


class SpendProposalForm(ProposalForm):
    recipient = forms.CharField(label=_("Recipient wallet address"), max_length=64)
    amount = AmountField(label=_("Amount to pay (ATH)"))


class ParameterValuesForm(forms.Form):
    """One optional field per governable parameter; fill in those to change."""

    def __init__(self, *args, current: dict[str, int], **kwargs):
        super().__init__(*args, **kwargs)
        self.current = current
        self.rows = []
        for param in parameters.DEFINITIONS.values():
            if not param.governable:
                continue
            name = f"param_{param.key}"
            self.fields[name] = forms.CharField(
                label=_(param.label),
                required=False,
                max_length=40,
                widget=forms.TextInput(attrs={"placeholder": param.format(current[param.key]), "inputmode": "decimal"}),
            )
            self.rows.append((param, name))

    def table(self):
        """(parameter, bound field, value now, bounds) for the template, by group."""
        return [
            {
                "param": param,
                "field": self[name],
                "now": shown(param, self.current[param.key]),
                "bounds": f"{shown(param, param.minimum)} … {shown(param, param.maximum)}",
                "unit": UNIT_HINT.get(param.unit, ""),
            }
            for param, name in self.rows
        ]

    def clean(self):
        cleaned = super().clean()
        changes = {}
        for param, name in self.rows:
            text = (cleaned.get(name) or "").strip()
            if not text:
                continue
            try:
                changes[param.key] = parse_param_value(param, text)
            except forms.ValidationError as exc:
                self.add_error(name, exc)
        if not changes and not self.errors:
            raise forms.ValidationError(_("Fill in the new value of at least one parameter."))
        cleaned["changes"] = changes
        return cleaned


class VoteForm(forms.Form):
    choice = forms.ChoiceField(label=_("Vote"), choices=Choice.choices)
