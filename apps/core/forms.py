"""Form fields shared by every app's forms: what a person types, cleaned to
the domain's units (``amounts.py``)."""

from django import forms

from .amounts import AmountError, parse_ath


class AmountField(forms.CharField):
    """An ATH amount typed by a person, cleaned to integer micro-ATH.
    Zero is refused unless ``allow_zero`` (a filter bound, not a payment)."""

    def __init__(self, *, allow_zero=False, **kwargs):
        self.allow_zero = allow_zero
        kwargs.setdefault("max_length", 40)
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "0.0"}))
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        try:
            return parse_ath(value, allow_zero=self.allow_zero)
        except AmountError as exc:
            raise forms.ValidationError(str(exc)) from None
