from django import forms
from django.conf import settings

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


def _model_choices(blank="Any GPU"):
    return [("", blank)] + [(m.slug, f"{m.name} · {m.vram_gb} GB") for m in GpuModel.objects.all()]


def _region_choices(blank="Anywhere"):
    return [("", blank)] + [(r.code, r.name) for r in Region.objects.order_by("name")]


class CatalogueForm(forms.Form):
    """The catalogue's filters; every field is optional and bad values are
    ignored (a shared URL never errors)."""

    SORTS = [
        ("price", "Price: low to high"),
        ("-price", "Price: high to low"),
        ("health", "Health: best first"),
        ("proximity", "Nearest first"),
        ("vram", "Most VRAM"),
    ]
    AVAILABILITY = [("free", "Available now"), ("all", "All listed (incl. rented)")]

    gpu = forms.ChoiceField(label="GPU model", required=False)
    min_vram = forms.IntegerField(label="Min VRAM per GPU (GB)", required=False, min_value=0, max_value=1024)
    count = forms.IntegerField(label="Min GPUs", required=False, min_value=1, max_value=MAX_GPUS)
    region = forms.ChoiceField(label="Region", required=False)
    near = forms.ChoiceField(label="I am near", required=False)
    max_price = OptionalAmountField(label="Max price / GPU-hour (ATH)", required=False)
    min_health = forms.IntegerField(label="Min health (%)", required=False, min_value=0, max_value=100)
    availability = forms.ChoiceField(label="Availability", choices=AVAILABILITY, required=False)
    sort = forms.ChoiceField(label="Sort", choices=SORTS, required=False)

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
    gpu = forms.ChoiceField(label="GPU model", required=False)
    min_vram = forms.IntegerField(
        label="…or at least this much VRAM per GPU (GB)", required=False, min_value=0, max_value=1024
    )
    count = forms.IntegerField(label="GPUs", initial=1, min_value=1, max_value=MAX_GPUS)
    region = forms.ChoiceField(label="I am in", required=False, help_text="Closer nodes answer faster.")
    max_price = OptionalAmountField(label="Max price per GPU-hour (ATH)", required=False)
    max_latency = forms.IntegerField(
        label="Max round trip (ms)",
        required=False,
        min_value=1,
        max_value=2000,
        help_text="Estimated from the great-circle distance to your region.",
    )
    hours = forms.IntegerField(label="For how many hours", initial=1, min_value=1, max_value=MAX_RENTAL_HOURS)
    preference = forms.ChoiceField(label="Rank for", choices=Preference.choices, initial=Preference.BALANCED)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["gpu"].choices = _model_choices()
        self.fields["region"].choices = _region_choices("Not saying")


class RentForm(forms.Form):
    WORKLOAD_FIELDS = ("template", "image", "command", "ports", "env", "secret_env")

    mode = forms.ChoiceField(
        choices=RentalMode.choices, initial=RentalMode.RESERVED, widget=forms.RadioSelect, label="How to pay"
    )
    hours = forms.IntegerField(
        label="Duration (hours)",
        required=False,
        min_value=1,
        max_value=MAX_RENTAL_HOURS,
        initial=1,
        help_text="Reserved: prepaid now, unserved time refunded if you end early.",
    )
    escrow = OptionalAmountField(
        label="Escrow to start with (ATH)",
        required=False,
        help_text="On-demand: billed per epoch from this escrow; top up any time, stop any time.",
    )
    template = forms.ChoiceField(
        label="What to run",
        required=False,
        choices=[("", "My own image")] + [(t.slug, t.name) for t in TEMPLATES],
        help_text="A template fills in the image, command and ports you leave empty.",
    )
    image = forms.CharField(
        label="Container image",
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
        label="Command",
        required=False,
        max_length=workload_spec.MAX_COMMAND_CHARS,
        help_text="Optional; quotes group words, nothing is expanded. Empty: the image's own command.",
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
    )
    ports = forms.CharField(
        label="Ports to expose",
        required=False,
        max_length=200,
        help_text="Container TCP ports, e.g. 8080, 8888. Each gets an address you can open.",
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off", "inputmode": "numeric"}),
    )
    env = forms.CharField(
        label="Environment",
        required=False,
        max_length=64 * 1024,
        help_text="NAME=value, one per line.",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )
    secret_env = forms.CharField(
        label="Secret environment",
        required=False,
        max_length=64 * 1024,
        help_text="NAME=value, one per line: passed to your container only, never shown back or logged.",
        widget=SecretTextarea(attrs={"rows": 2, "spellcheck": "false", "autocomplete": "off"}),
    )
    region = forms.ChoiceField(
        label="I am in", required=False, help_text="Used to pick a nearby replacement if the node fails."
    )
    auto_replace = forms.BooleanField(
        label="Move me to a replacement automatically if this node fails",
        required=False,
        initial=True,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].choices = _region_choices("Same as the node")

    def clean(self):
        data = super().clean()
        if data.get("mode") == RentalMode.RESERVED and not data.get("hours"):
            self.add_error("hours", "How many hours do you want to reserve?")
        if data.get("mode") == RentalMode.ON_DEMAND and not data.get("escrow"):
            self.add_error("escrow", "How much escrow do you want to start with?")
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
    amount = AmountField(label="Amount (ATH)")


class NodeForm(forms.Form):
    name = forms.CharField(
        max_length=80, label="Node name", widget=forms.TextInput(attrs={"placeholder": "e.g. fra-h100-01"})
    )
    gpu_model = forms.ModelChoiceField(queryset=GpuModel.objects.all(), label="GPU model", empty_label=None)
    gpu_count = forms.IntegerField(label="GPU count", min_value=1, max_value=MAX_GPUS, initial=1)
    vcpu = forms.IntegerField(label="vCPU", min_value=1, max_value=1024, initial=16)
    ram_gb = forms.IntegerField(label="RAM (GB)", min_value=1, max_value=65536, initial=128)
    region = forms.ModelChoiceField(queryset=Region.objects.order_by("name"), label="Region", empty_label=None)
    bandwidth_mbps = forms.IntegerField(label="Bandwidth (Mbps)", min_value=1, max_value=1_000_000, initial=1000)
    price = AmountField(label="Price per GPU-hour (ATH)", initial="2")
    sla_tier = forms.ChoiceField(choices=SlaTier.choices, label="SLA tier")
    endpoint = forms.URLField(
        label="Agent endpoint",
        max_length=200,
        assume_scheme="https",
        help_text="Where your provider agent's health endpoint answers checkers, e.g. http://203.0.113.7:9100/health.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if settings.DEMO_MODE:
            # The demo's network simulator runs the agent of a node declared
            # without an endpoint (see apps.demo.simulated_network.adopt_new_nodes).
            self.fields["endpoint"].required = False
            self.fields[
                "endpoint"
            ].help_text += (
                " In this demo you can leave it empty: the network simulator then runs a simulated agent for the node."
            )
