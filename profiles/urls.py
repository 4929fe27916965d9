from django.urls import path

from . import views

app_name = "profiles"

urlpatterns = [
    path("", views.profile_list, name="list"),
    path("new/", views.profile_new, name="new"),
    path("preview/", views.profile_preview, name="preview"),
    path("job-preview/", views.job_prompt_preview, name="job_preview"),
    path("<id:pk>/", views.profile_detail, name="detail"),
    path("<id:pk>/edit/", views.profile_edit, name="edit"),
    path("<id:pk>/duplicate/", views.profile_duplicate, name="duplicate"),
    path("<id:pk>/archive/", views.profile_archive, name="archive"),
    path("<id:pk>/resync/", views.profile_resync, name="resync"),
]
