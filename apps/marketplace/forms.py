from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from apps.core.forms import AmountField
from apps.core.models import GpuModel, Region, SlaTier

from . import workload_spec
from .matching import Preference
from .models import RentalMode
from .onboarding import MAX_GPUS
from .rentals import MAX_RENTAL_HOURS
from .workload_spec import WorkloadError
from .workload_templates import TEMPLATES


class SecretTextarea(forms.Textarea):
    """A textarea that never renders its value back: a refused form shows
    the secret field empty, to be typed again."""

    def format_value(self, value):
        return ""


class OptionalAmountField(AmountField):
    def clean(self, value):
        if value in (None, ""):
            return None
        return super().clean(value)


def _model_choices(blank=_("Any GPU")):
    return [("", blank)] + [(m.slug, f"{m.name} · {m.vram_gb} GB") for m in GpuModel.objects.all()]


def _region_choices(blank=_("Anywhere")):
    return [("", blank)] + [(r.code, r.name) for r in Region.objects.order_by("name")]


class CatalogueForm(forms.Form):
    """The catalogue's filters; every field is optional and bad values are
    ignored (a shared URL never errors)."""

    SORTS = [
        ("price", _("Price: low to high")),
        ("-price", _("Price: high to low")),
        ("health", _("Health: best first")),
        ("proximity", _("Nearest first")),
        ("vram", _("Most VRAM")),
    ]
    AVAILABILITY = [("free", _("Available now")), ("all", _("All listed (incl. rented)"))]

    gpu = forms.ChoiceField(label=_("GPU model"), required=False)
    min_vram = forms.IntegerField(label=_("Min VRAM per GPU (GB)"), required=False, min_value=0, max_value=1024)
    count = forms.IntegerField(label=_("Min GPUs"), required=False, min_value=1, max_value=MAX_GPUS)
    region = forms.ChoiceField(label=_("Region"), required=False)
    near = forms.ChoiceField(label=_("I am near"), required=False)
    max_price = OptionalAmountField(label=_("Max price / GPU-hour (ATH)"), required=False)
    min_health = forms.IntegerField(label=_("Min health (%)"), required=False, min_value=0, max_value=100)
    availability = forms.ChoiceField(label=_("Availability"), choices=AVAILABILITY, required=False)
    sort = forms.ChoiceField(label=_("Sort"), choices=SORTS, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["gpu"].choices = _model_choices()
        self.fields["region"].choices = _region_choices()
        self.fields["near"].choices = _region_choices("—")

    def values(self) -> dict:
        """The valid filters (invalid ones dropped, not fatal)."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {k: v for k, v in data.items() if v not in (None, "")}


class MatchForm(forms.Form):
    gpu = forms.ChoiceField(label=_("GPU model"), required=False)
    min_vram = forms.IntegerField(
        label=_("…or at least this much VRAM per GPU (GB)"), required=False, min_value=0, max_value=1024
    )
    count = forms.IntegerField(label=_("GPUs"), initial=1, min_value=1, max_value=MAX_GPUS)
    region = forms.ChoiceField(label=_("I am in"), required=False, help_text=_("Closer nodes answer faster."))
    max_price = OptionalAmountField(label=_("Max price per GPU-hour (ATH)"), required=False)
    max_latency = forms.IntegerField(
        label=_("Max round trip (ms)"),
        required=False,
        min_value=1,
        max_value=2000,
        help_text=_("Estimated from the great-circle distance to your region."),
    )
    hours = forms.IntegerField(label=_("For how many hours"), initial=1, min_value=1, max_value=MAX_RENTAL_HOURS)
    preference = forms.ChoiceField(label=_("Rank for"), choices=Preference.choices, initial=Preference.BALANCED)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["gpu"].choices = _model_choices()
        self.fields["region"].choices = _region_choices(_("Not saying"))


class RentForm(forms.Form):
    WORKLOAD_FIELDS = ("template", "image", "command", "ports", "env", "secret_env")

    mode = forms.ChoiceField(
        choices=RentalMode.choices, initial=RentalMode.RESERVED, widget=forms.RadioSelect, label=_("How to pay")
    )
    hours = forms.IntegerField(
        label=_("Duration (hours)"),
        required=False,
        min_value=1,
        max_value=MAX_RENTAL_HOURS,
        initial=1,
        help_text=_("Reserved: prepaid now, unserved time refunded if you end early."),
    )
    escrow = OptionalAmountField(
        label=_("Escrow to start with (ATH)"),
        required=False,
        help_text=_("On-demand: billed per epoch from this escrow; top up any time, stop any time."),
    )
    template = forms.ChoiceField(
        label=_("What to run"),
        required=False,
        choices=[("", "My own image")] + [(t.slug, t.name) for t in TEMPLATES],
        help_text=_("A template fills in the image, command and ports you leave empty."),
    )
    image = forms.CharField(
        label=_("Container image"),
        max_length=255,
        required=False,
        widget=forms.TextInput(
            attrs={
                "spellcheck": "false",
                "autocomplete": "off",
                "placeholder": "e.g. pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime",
            }
        ),
    )
    command = forms.CharField(
        label=_("Command"),
        required=False,
        max_length=workload_spec.MAX_COMMAND_CHARS,
        help_text=_("Optional; quotes group words, nothing is expanded. Empty: the image's own command."),
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
    )
    ports = forms.CharField(
        label=_("Ports to expose"),
        required=False,
        max_length=200,
        help_text=_("Container TCP ports, e.g. 8080, 8888. Each gets an address you can open."),
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off", "inputmode": "numeric"}),
    )
    env = forms.CharField(
        label=_("Environment"),
        required=False,
        max_length=64 * 1024,
        help_text=_("NAME=value, one per line."),
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )
    secret_env = forms.CharField(
        label=_("Secret environment"),
        required=False,
        max_length=64 * 1024,
        help_text=_("NAME=value, one per line: passed to your container only, never shown back or logged."),
        widget=SecretTextarea(attrs={"rows": 2, "spellcheck": "false", "autocomplete": "off"}),
    )
    region = forms.ChoiceField(
        label=_("I am in"), required=False, help_text=_("Used to pick a nearby replacement if the node fails.")
    )
    auto_replace = forms.BooleanField(
        label=_("Move me to a replacement automatically if this node fails"),
        required=False,
        initial=True,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].choices = _region_choices(_("Same as the node"))

    def clean(self):
        data = super().clean()
        if data.get("mode") == RentalMode.RESERVED and not data.get("hours"):
            self.add_error("hours", _("How many hours do you want to reserve?"))
        if data.get("mode") == RentalMode.ON_DEMAND and not data.get("escrow"):
            self.add_error("escrow", _("How much escrow do you want to start with?"))
        self.workload = self._workload(data)
        return data

    def _workload(self, data) -> workload_spec.WorkloadSpec | None:
        """The workload the form asks for (``self.workload``), or None with
        the reason on its field."""
        try:
            env = workload_spec.parse_env_lines(data.get("env", ""), secret=False, field_name="env")
            env += workload_spec.parse_env_lines(data.get("secret_env", ""), secret=True, field_name="secret_env")
            return workload_spec.from_request(
                template=data.get("template", ""),
                image=data.get("image", ""),
                command=data.get("command"),
                env=env,
                ports=data.get("ports"),
            )
        except WorkloadError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, str(exc))
            return None


class AmountForm(forms.Form):
    amount = AmountField(label=_("Amount (ATH)"))


class NodeForm(forms.Form):
    name = forms.CharField(
        max_length=80, label=_("Node name"), widget=forms.TextInput(attrs={"placeholder": "e.g. fra-h100-01"})
    )
    gpu_model = forms.ModelChoiceField(queryset=GpuModel.objects.all(), label=_("GPU model"), empty_label=None)
    gpu_count = forms.IntegerField(label=_("GPU count"), min_value=1, max_value=MAX_GPUS, initial=1)
    vcpu = forms.IntegerField(label=_("vCPU"), min_value=1, max_value=1024, initial=16)
    ram_gb = forms.IntegerField(label=_("RAM (GB)"), min_value=1, max_value=65536, initial=128)
    region = forms.ModelChoiceField(queryset=Region.objects.order_by("name"), label=_("Region"), empty_label=None)
    bandwidth_mbps = forms.IntegerField(label=_("Bandwidth (Mbps)"), min_value=1, max_value=1_000_000, initial=1000)
    price = AmountField(label=_("Price per GPU-hour (ATH)"), initial="2")
    sla_tier = forms.ChoiceField(choices=SlaTier.choices, label=_("SLA tier"))
    endpoint = forms.URLField(
        label=_("Agent endpoint"),
        max_length=200,
        assume_scheme="https",
        help_text=_(
            "Where your provider agent's health endpoint answers checkers, e.g. http://203.0.113.7:9100/health."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if settings.DEMO_MODE:
            # The demo's network simulator runs the agent of a node declared
            # without an endpoint (see apps.demo.simulated_network.adopt_new_nodes).
            self.fields["endpoint"].required = False
            self.fields["endpoint"].help_text += " " + _(
                "In this demo you can leave it empty: the network simulator then runs a simulated agent for the node."
            )
