from django.urls import path

from . import views

app_name = "settlement"

urlpatterns = [
    path("", views.index, name="index"),
    path("mine/", views.mine, name="mine"),
    path("epoch/<int:epoch>/", views.detail, name="epoch"),
]
