"""Domain errors: one base, one status table, one place that answers for
them over HTTP, and no app with its own translation."""

import ast
from pathlib import Path

import pytest
from django.test import RequestFactory
from rest_framework.exceptions import ValidationError

from apps.accounts.services import WalletError
from apps.api.exceptions import handle_exception
from apps.core import errors
from apps.core.amounts import AmountError
from apps.core.jsonlimits import JSONLimitError
from apps.core.ledger import GenesisError, InsufficientFunds, InvalidAmount, LedgerError, Unbalanced, UnknownAccount
from apps.core.numbers import NumberError
from apps.core.parameters import ParameterError
from apps.core.refusals import flash, refuse
from apps.governance.services import GovernanceError
from apps.marketplace.onboarding import OnboardingError
from apps.marketplace.providers import NotYourNode, ProviderError
from apps.marketplace.rentals import NotYours, RentalError
from apps.monitoring import ingest
from apps.staking import services as staking

APPS = Path(__file__).resolve().parents[2] / "apps"


@pytest.mark.parametrize(
    "meaning, status",
    [(errors.Refused, 400), (errors.Conflict, 409), (errors.NotAllowed, 403), (errors.NotFound, 404)],
)
def test_the_handler_answers_each_meaning_with_its_status(meaning, status):
    response = handle_exception(meaning("No."), {})
    assert response.status_code == status
    assert response.data == {"detail": "No."}


def test_every_meaning_has_a_status_and_a_plain_domain_error_is_a_refusal():
    assert set(errors.STATUS) == {errors.REFUSED, errors.CONFLICT, errors.NOT_ALLOWED, errors.NOT_FOUND}
    assert handle_exception(errors.DomainError("No."), {}).status_code == 400


def test_a_refusal_about_one_field_answers_under_that_field():
    response = handle_exception(errors.Refused("Too much.", field="amount"), {})
    assert response.status_code == 400 and response.data == {"amount": ["Too much."]}


def test_other_exceptions_are_left_to_drf():
    response = handle_exception(ValidationError({"detail": "x"}), {})
    assert response.status_code == 400
    assert handle_exception(RuntimeError("boom"), {}) is None  # still a 500


@pytest.mark.parametrize(
    "error, status",
    [
        (LedgerError, 400),
        (InvalidAmount, 400),
        (InsufficientFunds, 400),
        (UnknownAccount, 400),
        (Unbalanced, 400),
        (GenesisError, 400),
        (ParameterError, 400),
        (NumberError, 400),
        (AmountError, 400),
        (JSONLimitError, 400),
        (WalletError, 400),
        (ProviderError, 400),
        (OnboardingError, 400),
        (RentalError, 400),
        (GovernanceError, 400),
        (staking.StakingError, 400),
        (ingest.IngestError, 400),
        # Another person's rental or node does not exist, as the API already answers for them.
        (NotYours, 404),
        (NotYourNode, 404),
        (ingest.Conflict, 409),
        (staking.AlreadyDistributed, 409),
        (staking.NotAllowed, 403),
    ],
)
def test_each_service_error_means_what_its_endpoints_answer(error, status):
    exc = error("No.")
    # Still a ValueError, so existing ``except ValueError`` keeps working.
    assert isinstance(exc, ValueError) and isinstance(exc, errors.DomainError)
    assert exc.status == status
    assert handle_exception(exc, {}).status_code == status


def test_a_meaning_never_hides_the_family():
    assert issubclass(staking.NotAllowed, staking.StakingError)
    assert issubclass(ingest.Conflict, ingest.IngestError)
    assert issubclass(NotYours, RentalError) and issubclass(NotYourNode, ProviderError)


def test_html_views_show_a_refusal_on_the_form_or_as_a_message():
    from django import forms

    class Form(forms.Form):
        amount = forms.CharField()

    form = Form({"amount": "1"})
    assert form.is_valid()
    assert refuse(form, errors.Refused("Not enough."), "amount") == 400
    assert form.errors == {"amount": ["Not enough."]}
    form = Form({"amount": "1"})
    form.is_valid()
    assert refuse(form, errors.NotAllowed("Not yours.")) == 403
    assert form.non_field_errors() == ["Not yours."]

    from django.contrib.messages import get_messages
    from django.contrib.messages.storage.fallback import FallbackStorage

    request = RequestFactory().post("/")
    request.session = {}
    request._messages = FallbackStorage(request)
    assert flash(request, errors.Conflict("Already.")) == 409
    assert [str(m) for m in get_messages(request)] == ["Already."]


# --- No app translates domain errors itself ----------------------------------------

# Turning an error into an HTTP answer by hand; the handler and apps.core.refusals do that.
HTTP_ERRORS = {"ValidationError", "PermissionDenied", "NotFound", "Http404", "ParseError", "APIException"}
# A serializer field or form clean method attaches its message to its field by
# raising ValidationError: that is field validation, not an error mapping.
FIELD_VALIDATION = ("to_internal_value", "validate", "clean")
# Text that does not parse (a typed amount, an id in a URL, a JSON body) is
# input validation: where it is parsed decides how it is shown (a field
# error, a 404 for an id that cannot exist, DRF's ParseError).
PARSING = {"NumberError", "AmountError", "JSONLimitError"}


def _modules():
    for path in sorted(APPS.rglob("*.py")):
        if "migrations" not in path.parts:
            yield path, ast.parse(path.read_text(), filename=str(path))


def _domain_error_names(trees) -> set[str]:
    """Names of every class that derives, directly or not, from a DomainError."""
    names = {"DomainError", "Refused", "Conflict", "NotAllowed", "NotFound"}
    bases = {}
    for _, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(
                    b.id if isinstance(b, ast.Name) else b.attr
                    for b in node.bases
                    if isinstance(b, ast.Name | ast.Attribute)
                )
    grew = True
    while grew:
        more = {name for name, parents in bases.items() if parents & names} - names
        names |= more
        grew = bool(more)
    return names


def _caught(handler) -> set[str]:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return {k.id if isinstance(k, ast.Name) else k.attr for k in kinds if isinstance(k, ast.Name | ast.Attribute)}


def _maps_to_http(handler) -> bool:
    for node in ast.walk(handler):
        call = node.exc if isinstance(node, ast.Raise) else node.value if isinstance(node, ast.Return) else None
        if isinstance(call, ast.Call):
            func = call.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in HTTP_ERRORS or (isinstance(node, ast.Return) and name in {"Response", "JsonResponse"}):
                return True
    return False


def test_no_app_defines_its_own_error_mapping():
    trees = list(_modules())
    domain = _domain_error_names(trees) - PARSING
    found = []
    for path, tree in trees:
        where = path.relative_to(APPS.parent)
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if func.name in {"_refused", "_wallet_error", "bad"}:
                found.append(f"{where}: def {func.name}")
            if func.name.startswith(FIELD_VALIDATION):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.ExceptHandler) and node.type is not None and _caught(node) & domain:
                    if _maps_to_http(node):
                        found.append(f"{where}:{node.lineno} maps {sorted(_caught(node) & domain)} in {func.name}()")
    assert not found, "Let domain errors propagate to apps.api.exceptions, or use apps.core.refusals:\n" + "\n".join(
        found
    )


def test_the_check_would_catch_a_hand_written_mapping():
    tree = ast.parse(
        "def post(self, request):\n"
        "    try:\n        services.send()\n"
        "    except services.WalletError as exc:\n        raise ValidationError({'detail': str(exc)}) from None\n"
    )
    handler = next(n for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler))
    assert _caught(handler) == {"WalletError"} and _maps_to_http(handler)
