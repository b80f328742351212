"""The protocol parameters' labels and groups, marked for translation: the
definitions in :mod:`apps.core.parameters` stay plain text (the API and the
ledger read them); pages translate them when shown. A test checks every
label and group is listed here."""

from django.utils.translation import gettext_noop

LABELS = [
    gettext_noop("Epoch length"),
    gettext_noop("Emission per epoch"),
    gettext_noop("Emission share: providers"),
    gettext_noop("Emission share: checkers"),
    gettext_noop("Emission share: community pool"),
    gettext_noop("Protocol fee on rentals"),
    gettext_noop("Collateral per unit of stake weight"),
    gettext_noop("Downtime slash (share of required collateral)"),
    gettext_noop("False-spec slash (share of required collateral)"),
    gettext_noop("Hardware floor: minimum VRAM"),
    gettext_noop("Hardware floor: minimum bandwidth"),
    gettext_noop("SLA uptime target"),
    gettext_noop("SLA uptime cut-off"),
    gettext_noop("SLA maximum latency"),
    gettext_noop("Epochs below cut-off before suspension"),
    gettext_noop("SLA credit (share of the epoch's fee, from collateral)"),
    gettext_noop("Minimum checker self-stake"),
    gettext_noop("Replication R (checkers per node)"),
    gettext_noop("Report quorum"),
    gettext_noop("Report tolerance: uptime"),
    gettext_noop("Report tolerance: latency"),
    gettext_noop("Misreport slash (share of bonded stake)"),
    gettext_noop("Misreport jail: share of judged reports"),
    gettext_noop("Misreport jail: minimum incorrect reports"),
    gettext_noop("Incorrect-report window"),
    gettext_noop("Jail time"),
    gettext_noop("Network incident: share of checkers jailed or nodes without consensus"),
    gettext_noop("Missed assignments before jail"),
    gettext_noop("Compute challenge: matrix size"),
    gettext_noop("Compute challenge: rows checked"),
    gettext_noop("Compute challenge: deadline slack (x)"),
    gettext_noop("Compute challenge: deadline grace"),
    gettext_noop("Speed test: download size (KiB)"),
    gettext_noop("Unbonding period"),
    gettext_noop("Commission maximum change per epoch"),
    gettext_noop("Minimum delegation"),
    gettext_noop("Proposal minimum deposit"),
    gettext_noop("Voting period"),
    gettext_noop("Quorum"),
    gettext_noop("Pass threshold"),
    gettext_noop("Veto threshold"),
]

GROUPS = [
    gettext_noop("checkers"),
    gettext_noop("emission"),
    gettext_noop("epochs"),
    gettext_noop("governance"),
    gettext_noop("providers"),
    gettext_noop("rentals"),
    gettext_noop("sla"),
    gettext_noop("staking"),
]


# Where a value came from, when no proposal set it (``ParameterChange.source``).
SOURCES = [gettext_noop("Default at genesis")]


# Node statuses as they are stored, where a page shows the stored word
# (a node's consensus history).
NODE_STATUS_WORDS = [
    gettext_noop("pending"),
    gettext_noop("online"),
    gettext_noop("degraded"),
    gettext_noop("suspended"),
    gettext_noop("offline"),
]


def shown(param, value: int) -> str:
    """A parameter's value as people read it in the active language: its
    separators, and its unit word translated (the API keeps ``param.format``)."""
    from django.utils.translation import gettext

    from .amounts import localize_separators

    text = param.format(value)
    if param.unit == "epochs":
        text = text.removesuffix(" epochs") + " " + gettext("epochs")
    return localize_separators(text)
