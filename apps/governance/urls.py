from django.urls import path

from . import views

app_name = "governance"

urlpatterns = [
    path("", views.index, name="index"),
    path("parameters/", views.parameters, name="parameters"),
]
