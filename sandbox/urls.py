"""Sandbox routes: one submit and one status route per catalog endpoint, and the profiles."""

from django.urls import path, re_path

from jobs import catalog

from . import views

app_name = "sandbox"

urlpatterns = [
    path("control/", views.control, name="control"),
    path("imagepipeline/files/<str:name>", views.result_file, name="imagepipeline_file"),
    path("imagepipeline/upload/image/v1", views.upload_image, name="upload_image"),
    path("imagepipeline/uploads/<str:name>", views.uploaded_file, name="uploaded_file"),
    path("imagepipeline/profiles/v1", views.profiles_collection, name="profiles"),
    path("imagepipeline/profiles/v1/<str:profile_id>", views.profile_item, name="profile"),
    path("imaginepro/files/<str:name>", views.result_file, name="imaginepro_file"),
    path(
        "imaginepro/api/v1/message/fetch/<str:message_id>",
        views.imaginepro_fetch,
        name="imaginepro_fetch",
    ),
]

for _endpoint in catalog.ENDPOINTS:
    _route = f"{_endpoint.provider.value}/{_endpoint.path.lstrip('/')}"
    if _endpoint.provider is catalog.Provider.IMAGEPIPELINE:
        urlpatterns += [
            path(_route, views.submit, {"key": _endpoint.key}, name=f"submit-{_endpoint.key}"),
            path(
                f"{_route}/status/<str:job_id>",
                views.status,
                {"key": _endpoint.key},
                name=f"status-{_endpoint.key}",
            ),
        ]
    else:
        urlpatterns.append(
            path(
                _route,
                views.imaginepro_submit,
                {"key": _endpoint.key},
                name=f"submit-{_endpoint.key}",
            )
        )

# Provider-shaped errors: JSON 405 on every route, JSON 404 for any other path.
for _pattern in urlpatterns:
    _pattern.callback = views.json_errors(_pattern.callback)
urlpatterns.append(re_path(r"^(?P<path>.*)$", views.not_found, name="not_found"))
