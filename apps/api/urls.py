from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.accounts import api as accounts_api
from apps.explorer import api as explorer_api

from . import redoc

app_name = "api"

urlpatterns = [
    # Agents and the public monitoring data; first, for the agents' heartbeats
    # (see aethir_web/urls.py).
    path("", include("apps.monitoring.api_urls")),
    path("staking/", include("apps.staking.api_urls")),
    # Read-only, versioned: what an outside auditor recomputes every amount from.
    path("v1/public/", include("apps.api.public.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", redoc.page(url_name="api:schema"), name="redoc"),
    path("redoc/redoc.standalone.js", redoc.bundle, name="redoc-bundle"),
    path("ledger/", explorer_api.LedgerSummary.as_view(), name="ledger-summary"),
    path("ledger/verify/", explorer_api.LedgerVerify.as_view(), name="ledger-verify"),
    path("ledger/checkpoints/", explorer_api.CheckpointList.as_view(), name="ledger-checkpoints"),
    path("ledger/checkpoints/latest/", explorer_api.CheckpointLatest.as_view(), name="ledger-checkpoint-latest"),
    path("transactions/", explorer_api.TransactionList.as_view(), name="transactions"),
    path("transactions/<int:height>/", explorer_api.TransactionDetail.as_view(), name="transaction"),
    path("accounts/", explorer_api.AccountList.as_view(), name="accounts"),
    path("accounts/<str:address>/", explorer_api.AccountDetail.as_view(), name="account"),
    path("accounts/<str:address>/entries/", explorer_api.AccountEntries.as_view(), name="account-entries"),
    path("wallet/", accounts_api.Wallet.as_view(), name="wallet"),
    path("wallet/faucet/", accounts_api.Faucet.as_view(), name="faucet"),
    path("wallet/send/", accounts_api.Send.as_view(), name="send"),
    path("governance/", include("apps.governance.api_urls")),
    path("marketplace/", include("apps.marketplace.api_urls")),
    path("developer/", include("apps.developer.api_urls")),
    path("settlement/", include("apps.settlement.api_urls")),
]
