from django import forms
from django.contrib.auth.forms import UserCreationForm

from apps.core.amounts import AmountError, parse_ath


class SignUpForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        fields = ("username",)


class AmountField(forms.CharField):
    """An ATH amount typed by a person, cleaned to integer micro-ATH."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 40)
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "0.0"}))
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        try:
            return parse_ath(value)
        except AmountError as exc:
            raise forms.ValidationError(str(exc)) from None


class SendForm(forms.Form):
    to_address = forms.CharField(label="Recipient address", max_length=64)
    amount = AmountField(label="Amount (ATH)")
    memo = forms.CharField(max_length=200, required=False)
