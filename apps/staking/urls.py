from django.urls import path

from . import views

app_name = "staking"

urlpatterns = [
    path("", views.index, name="index"),
]
