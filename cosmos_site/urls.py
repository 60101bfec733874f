from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "Cosmos Workflow"
admin.site.site_title = "Cosmos Workflow"
admin.site.index_title = "Prompts, runs and GPU nodes"

urlpatterns = [
    # Pages name their icon (static/favicon.svg); this answers browsers and tools that ask the site root.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("webhooks.urls")),
    path("", include("runs.urls")),
]
