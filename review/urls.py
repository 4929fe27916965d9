from django.urls import path

from . import views

app_name = "review"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("outputs/<int:pk>/", views.output_review, name="output"),
    path("outputs/<int:pk>/decide/", views.decide, name="decide"),
    path("outputs/<int:pk>/comments/", views.comment_add, name="comment_add"),
    path("outputs/<int:pk>/star/", views.star_toggle, name="star"),
    path("comments/<int:pk>/edit/", views.comment_edit, name="comment_edit"),
    path("bulk/", views.bulk, name="bulk"),
    path("boards/", views.boards, name="boards"),
    path("boards/<int:pk>/", views.board_detail, name="board"),
    path("compare/", views.compare, name="compare"),
    path("exports/", views.exports, name="exports"),
    path("exports/<int:pk>/", views.export_detail, name="export"),
    path("exports/<int:pk>/download/", views.export_download, name="export_download"),
    path("activity/", views.activity, name="activity"),
]
