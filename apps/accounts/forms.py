from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.utils.translation import gettext_lazy as _

from apps.core.forms import AmountField

from .throttle import minutes


class SignUpForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        fields = ("username",)


class ThrottleMessage:
    """Says "wait" instead of "wrong password" when the log-in limits
    (``apps.accounts.backends``) refused the attempt."""

    def get_invalid_login_error(self):
        retry = getattr(self.request, "login_refused", None)
        if retry is not None:
            return forms.ValidationError(
                _("Too many log-in attempts. Try again in %(wait)s.") % {"wait": minutes(retry)}, code="throttled"
            )
        return super().get_invalid_login_error()


class LoginForm(ThrottleMessage, AuthenticationForm):
    pass


class AdminLoginForm(ThrottleMessage, AdminAuthenticationForm):
    pass


class SendForm(forms.Form):
    to_address = forms.CharField(label=_("Recipient address"), max_length=64)
    amount = AmountField(label=_("Amount (ATH)"))
    memo = forms.CharField(label=_("Memo"), max_length=200, required=False)


class PublicNameForm(forms.Form):
    public_name = forms.CharField(
        label=_("Public name"),
        required=False,
        max_length=64,
        help_text=_("Shown on public pages instead of your address. Leave empty to show your address only."),
    )
