from django.urls import path

from . import views

app_name = "explorer"

urlpatterns = [
    path("", views.index, name="index"),
    path("tx/<int:height>/", views.transaction, name="transaction"),
    path("accounts/", views.account_list, name="accounts"),
    path("account/<str:address>/", views.account, name="account"),
    path("verify/", views.verify, name="verify"),
    path("checkpoints/", views.checkpoints, name="checkpoints"),
]
