from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

admin.site.site_header = "Cosmos Workflow"
admin.site.site_title = "Cosmos Workflow"
admin.site.index_title = "Prompts, runs and GPU nodes"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("runs.urls")),
]
