from django import forms
from django.utils.translation import gettext_lazy as _

from apps.core.amounts import localize_separators
from apps.core.forms import AmountField
from apps.core.models import CheckerNode, CheckerStatus
from apps.core.numbers import NumberError, parse_scaled

PPM = 1_000_000


class PercentField(forms.CharField):
    """A percentage typed by a person ("5", "2.5%"), cleaned to ppm."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 12)
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "5"}))
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value) or ""
        try:
            # 0% is a real commission, so zero is allowed here.
            ppm = parse_scaled(
                value,
                4,
                allow_zero=True,
                suffixes=("%",),
                what="percentage",
                example="5 or 2.5",
                too_fine=_("Use at most four decimals (1 ppm = 0.0001%)."),
                too_large=_("Enter a percentage between 0 and 100."),
            )
        except NumberError as exc:
            raise forms.ValidationError(str(exc)) from None
        if ppm > PPM:
            raise forms.ValidationError(_("Enter a percentage between 0 and 100."))
        return ppm


class CheckerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        status = str(obj.get_status_display()).split(" (")[0].lower()
        return _("%(name)s (%(status)s, %(rate)s commission)") % {
            "name": obj.name,
            "status": status,
            "rate": localize_separators(f"{obj.commission_rate / 10_000:g}%"),
        }


class _OwnIds:
    """Several forms share the checker page: give each its own element ids
    so every label points at its own input."""

    id_prefix = ""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", f"{self.id_prefix}_%s")
        super().__init__(*args, **kwargs)


class DelegateForm(_OwnIds, forms.Form):
    id_prefix = "delegate"
    checker = forms.ModelChoiceField(queryset=CheckerNode.objects.all(), widget=forms.HiddenInput)
    amount = AmountField(label=_("Amount to delegate (ATH)"))


class UndelegateForm(_OwnIds, forms.Form):
    id_prefix = "undelegate"
    checker = forms.ModelChoiceField(queryset=CheckerNode.objects.all(), widget=forms.HiddenInput)
    amount = AmountField(label=_("Amount to undelegate (ATH)"))


class RedelegateForm(_OwnIds, forms.Form):
    id_prefix = "redelegate"
    src = forms.ModelChoiceField(queryset=CheckerNode.objects.all(), widget=forms.HiddenInput)
    dst = CheckerChoiceField(
        label=_("Move to checker"),
        queryset=CheckerNode.objects.filter(status=CheckerStatus.ACTIVE).order_by("name"),
        empty_label=_("Choose an active checker"),
    )
    amount = AmountField(label=_("Amount to move (ATH)"))

    def __init__(self, *args, exclude=None, **kwargs):
        super().__init__(*args, **kwargs)
        if exclude is not None:
            self.fields["dst"].queryset = self.fields["dst"].queryset.exclude(pk=exclude.pk)


class ClaimForm(forms.Form):
    checker = forms.ModelChoiceField(queryset=CheckerNode.objects.all(), required=False, widget=forms.HiddenInput)


class ActivateForm(forms.Form):
    name = forms.CharField(max_length=80, label=_("Checker name"))
    self_stake = AmountField(label=_("Self-stake (ATH)"))
    commission_rate = PercentField(label=_("Commission (%)"), initial="5")
    commission_max_rate = PercentField(
        label=_("Maximum commission (%)"), initial="20", help_text=_("Fixed for the checker's lifetime.")
    )


class CommissionForm(forms.Form):
    rate = PercentField(label=_("New commission (%)"))
