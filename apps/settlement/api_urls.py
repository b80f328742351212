from django.urls import path

from . import api

urlpatterns = [
    path("epochs/", api.EpochList.as_view(), name="settlement-epochs"),
    path("epochs/<int:epoch>/", api.EpochDetail.as_view(), name="settlement-epoch"),
    path("epochs/<int:epoch>/lines/", api.EpochLines.as_view(), name="settlement-lines"),
    path("incidents/", api.IncidentList.as_view(), name="settlement-incidents"),
    path("mine/", api.MyLines.as_view(), name="settlement-mine"),
]
