from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm

from apps.core.amounts import AmountError, parse_ath


class SignUpForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        fields = ("username",)


class ThrottleMessage:
    """Says "wait" instead of "wrong password" when the log-in limits
    (``apps.accounts.backends``) refused the attempt."""

    def get_invalid_login_error(self):
        retry = getattr(self.request, "login_refused", None)
        if retry is not None:
            from .throttle import minutes

            return forms.ValidationError(
                f"Too many log-in attempts. Try again in {minutes(retry)}.", code="throttled"
            )
        return super().get_invalid_login_error()


class LoginForm(ThrottleMessage, AuthenticationForm):
    pass


class AdminLoginForm(ThrottleMessage, AdminAuthenticationForm):
    pass


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


class SendForm(forms.Form):
    to_address = forms.CharField(label="Recipient address", max_length=64)
    amount = AmountField(label="Amount (ATH)")
    memo = forms.CharField(max_length=200, required=False)
