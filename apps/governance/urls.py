from django.urls import path

from . import views

app_name = "governance"

urlpatterns = [
    path("", views.index, name="index"),
    path("parameters/", views.parameters, name="parameters"),
    path("new/", views.new, name="new"),
    path("new/<str:kind>/", views.create, name="create"),
    path("<int:pk>/", views.proposal, name="proposal"),
    path("<int:pk>/vote/", views.vote, name="vote"),
]
