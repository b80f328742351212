from django.urls import path

from . import views

app_name = "monitoring"

urlpatterns = [
    path("", views.index, name="index"),
    path("nodes/", views.node_list, name="nodes"),
    path("nodes/<int:pk>/", views.node_detail, name="node"),
    path("nodes/<int:pk>/status/", views.node_status, name="node-status"),
    path("checkers/", views.checker_list, name="checkers"),
    path("checkers/<int:pk>/", views.checker_detail, name="checker"),
    path("checkers/<int:pk>/status/", views.checker_status, name="checker-status"),
    path("assignments/", views.assignments, name="assignments"),
]
