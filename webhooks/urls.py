from django.urls import path

from webhooks import views

urlpatterns = [
    path("webhooks/", views.webhook_list, name="webhook_list"),
    path("webhooks/<str:webhook_id>/delete/", views.webhook_delete_view, name="webhook_delete_view"),
    path("webhooks/<str:webhook_id>/test/", views.webhook_test_view, name="webhook_test_view"),
]
