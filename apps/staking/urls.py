from django.urls import path

from . import views

app_name = "staking"

urlpatterns = [
    path("", views.index, name="index"),
    path("checker/<int:pk>/", views.checker_detail, name="checker"),
    path("delegate/", views.delegate, name="delegate"),
    path("undelegate/", views.undelegate, name="undelegate"),
    path("redelegate/", views.redelegate, name="redelegate"),
    path("claim/", views.claim, name="claim"),
    path("auto-compound/", views.auto_compound, name="auto-compound"),
    path("me/", views.me, name="me"),
    path("operator/", views.operator, name="operator"),
    path("operator/activate/", views.activate, name="activate"),
    path("operator/<int:pk>/commission/", views.commission, name="commission"),
    path("operator/<int:pk>/unjail/", views.unjail, name="unjail"),
]
