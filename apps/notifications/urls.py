from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("", views.index, name="index"),
    path("settings/", views.settings_page, name="settings"),
    path("endpoints/<int:pk>/", views.endpoint, name="endpoint"),
    path("endpoints/<int:pk>/enable/", views.endpoint_enable, name="endpoint-enable"),
    path("endpoints/<int:pk>/remove/", views.endpoint_remove, name="endpoint-remove"),
]
