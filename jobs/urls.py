from django.urls import path

from review import views as review_views

from . import views

app_name = "jobs"

urlpatterns = [
    # The gallery's filters, search, keyset pages and bulk actions belong to the review app.
    path("", review_views.gallery, name="gallery"),
    path("jobs/new/<slug:key>/", views.job_new, name="new"),
    path("jobs/new/<slug:key>/picker/<slug:field>/", views.asset_picker, name="asset_picker"),
    path("jobs/<id:pk>/", views.job_detail, name="detail"),
    path("jobs/<id:pk>/card/", views.job_card, name="card"),
    path("jobs/<id:pk>/rerun/", views.job_rerun, name="rerun"),
    path("jobs/<id:pk>/cancel/", views.job_cancel, name="cancel"),
    path("assets/<id:pk>/<str:variant>/", views.asset_file, name="asset_file"),
    path(
        "outputs/<id:pk>/<str:variant>/",
        views.output_file,
        name="output_file",
    ),
    path("catalog/", views.catalog_page, name="catalog"),
    path("api/catalog", views.catalog_json, name="catalog_json"),
]
