from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "Cosmos Workflow"
admin.site.site_title = "Cosmos Workflow"
admin.site.index_title = "Prompts, runs and GPU nodes"

urlpatterns = [
    path("admin/", admin.site.urls),
    # The pages arrive later; until then the admin is the app.
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
