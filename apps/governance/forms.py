"""Proposal forms. Values a person types are parsed exactly (Decimal, never
float) into the parameter's integer unit; the services re-check everything."""

from django import forms

from apps.core import parameters
from apps.core.amounts import format_uath
from apps.core.forms import AmountField
from apps.core.numbers import NumberError, parse_scaled

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
        places, suffixes, finest = 6, ("ATH",), "ATH has at most six decimals."
    elif param.unit == "ppm":
        places, suffixes, finest = 4, ("%",), "Percentages go down to 0.0001%."
    else:
        places, suffixes, finest = 0, (), "Enter a whole number."
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
            too_large=f"Must be at most {param.format(param.maximum)}.",
        )
    except NumberError as exc:
        message = str(exc)
        if message.startswith("Enter a number"):
            message = f"Enter a number {UNIT_HINT.get(param.unit, '')}.".replace("  ", " ")
        raise forms.ValidationError(message) from None
    if not param.minimum <= value <= param.maximum:
        raise forms.ValidationError(f"Must be between {param.format(param.minimum)} and {param.format(param.maximum)}.")
    return value


class ProposalForm(forms.Form):
    title = forms.CharField(max_length=TITLE_MAX)
    description = forms.CharField(
        max_length=DESCRIPTION_MAX,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="Markdown: **bold**, *italic*, lists, links, `code`. HTML is shown as text.",
    )
    deposit = AmountField(label="Deposit (ATH)")

    def __init__(self, *args, min_deposit: int, available: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["deposit"].initial = format_uath(min_deposit, unit=False)
        hint = f"At least {format_uath(min_deposit)}, locked from your available balance"
        if available is not None:
            hint += f" (you have {format_uath(available)})"
        self.fields["deposit"].help_text = (
            hint + ". Refunded if the vote reaches quorum and is not vetoed, burned otherwise."
        )
        self.min_deposit = min_deposit

    def clean_deposit(self):
        deposit = self.cleaned_data["deposit"]
        if deposit < self.min_deposit:
            raise forms.ValidationError(f"The minimum deposit is {format_uath(self.min_deposit)}.")
        return deposit


class SpendProposalForm(ProposalForm):
    recipient = forms.CharField(label="Recipient wallet address", max_length=64)
    amount = AmountField(label="Amount to pay (ATH)")


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
                label=param.label,
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
                "now": param.format(self.current[param.key]),
                "bounds": f"{param.format(param.minimum)} … {param.format(param.maximum)}",
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
            raise forms.ValidationError("Fill in the new value of at least one parameter.")
        cleaned["changes"] = changes
        return cleaned


class VoteForm(forms.Form):
    choice = forms.ChoiceField(choices=Choice.choices)
