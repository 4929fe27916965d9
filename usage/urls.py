from django.urls import path

from . import views

app_name = "usage"

urlpatterns = [
    path("", views.usage_page, name="page"),
    path("usage.csv", views.usage_csv, name="csv"),
    path("budget/", views.budget_edit, name="budget"),
]
