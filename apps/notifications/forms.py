from django import forms
from django.utils.translation import gettext_lazy as _


class EndpointForm(forms.Form):
    url = forms.CharField(
        label=_("Endpoint URL"), max_length=500, widget=forms.URLInput(attrs={"placeholder": "https://"})
    )
    description = forms.CharField(label=_("Description"), max_length=100, required=False)


class EmailForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"), required=False)
