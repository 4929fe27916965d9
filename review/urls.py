from django.urls import path

from . import views

app_name = "review"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("outputs/<id:pk>/", views.output_review, name="output"),
    path("outputs/<id:pk>/decide/", views.decide, name="decide"),
    path("outputs/<id:pk>/comments/", views.comment_add, name="comment_add"),
    path("outputs/<id:pk>/star/", views.star_toggle, name="star"),
    path("comments/<id:pk>/edit/", views.comment_edit, name="comment_edit"),
    path("bulk/", views.bulk, name="bulk"),
    path("boards/", views.boards, name="boards"),
    path("boards/<id:pk>/", views.board_detail, name="board"),
    path("compare/", views.compare, name="compare"),
    path("exports/", views.exports, name="exports"),
    path("exports/new/", views.export_new, name="export_new"),
    path("exports/<id:pk>/", views.export_detail, name="export"),
    path("exports/<id:pk>/download/", views.export_download, name="export_download"),
    path("activity/", views.activity, name="activity"),
]
