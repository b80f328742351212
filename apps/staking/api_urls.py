from django.urls import path

from . import api

app_name = "staking-api"

urlpatterns = [
    path("checkers/", api.CheckerList.as_view(), name="checkers"),
    path("checkers/<int:pk>/", api.CheckerDetail.as_view(), name="checker"),
    path("checkers/<int:pk>/rewards/", api.CheckerRewards.as_view(), name="checker-rewards"),
    path("checkers/<int:pk>/slashes/", api.CheckerSlashes.as_view(), name="checker-slashes"),
    path("checkers/<int:pk>/commission/", api.Commission.as_view(), name="commission"),
    path("checkers/<int:pk>/unjail/", api.Unjail.as_view(), name="unjail"),
    path("me/", api.MyStaking.as_view(), name="me"),
    path("delegate/", api.Delegate.as_view(), name="delegate"),
    path("undelegate/", api.Undelegate.as_view(), name="undelegate"),
    path("redelegate/", api.Redelegate.as_view(), name="redelegate"),
    path("claim/", api.Claim.as_view(), name="claim"),
]
