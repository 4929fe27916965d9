from django.urls import path

from . import views

app_name = "casting"

urlpatterns = [
    path("", views.run_list, name="list"),
    path("new/", views.run_new, name="new"),
    path("<id:pk>/", views.run_detail, name="detail"),
    path("<id:pk>/rerun-failed/", views.run_rerun_failed, name="rerun_failed"),
    path("<id:pk>/rerun-all/", views.run_rerun_all, name="rerun_all"),
]
