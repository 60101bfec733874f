from django.urls import path

from runs.views import actions, api, compare, input_sets, media, new_run, pages, prompts, sweeps

urlpatterns = [
    path("", pages.dashboard, name="dashboard"),
    path("runs/", pages.run_list, name="run_list"),
    path("runs/new/", new_run.run_new, name="run_new"),
    path("inputs/<str:value>/thumbnail.jpg", input_sets.input_thumbnail_view, name="input_thumbnail"),
    path("runs/<str:run_id>/", pages.run_detail, name="run_detail"),
    path("runs/<str:run_id>/progress/", pages.run_progress, name="run_progress"),
    path("runs/<str:run_id>/log/", pages.run_log, name="run_log"),
    path("runs/<str:run_id>/command/", pages.run_command_view, name="run_command"),
    path("runs/<str:run_id>/cancel/", actions.run_cancel_view, name="run_cancel_view"),
    path("runs/<str:run_id>/retry/", actions.run_retry_view, name="run_retry_view"),
    path("runs/<str:run_id>/again/", actions.run_again_view, name="run_again_view"),
    path("runs/<str:run_id>/star/", actions.run_star_view, name="run_star_view"),
    path("runs/<str:run_id>/rate/", actions.run_rate_view, name="run_rate_view"),
    path("runs/<str:run_id>/delete/", actions.run_delete_view, name="run_delete_view"),
    path("runs/<str:run_id>/top/", actions.run_top_view, name="run_top_view"),
    path("runs/<str:run_id>/sweep/", sweeps.sweep_new, name="sweep_new"),
    path("runs/<str:run_id>/files/<path:name>", media.run_file, name="run_file"),
    path("runs/<str:run_id>/inputs/<str:modality>", media.run_input, name="run_input"),
    path("sweeps/", sweeps.sweep_list, name="sweep_list"),
    path("sweeps/<str:sweep_id>/", sweeps.sweep_detail, name="sweep_detail"),
    path("sweeps/<str:sweep_id>/cancel/", sweeps.sweep_cancel_view, name="sweep_cancel_view"),
    path("queue/pause/", actions.queue_pause_view, name="queue_pause_view"),
    path("queue/resume/", actions.queue_resume_view, name="queue_resume_view"),
    path("prompts/", prompts.prompt_list, name="prompt_list"),
    path("prompts/<str:prompt_id>/", prompts.prompt_detail, name="prompt_detail"),
    path("gallery/", pages.gallery, name="gallery"),
    path("compare/", compare.compare, name="compare"),
    path("api/", api.api.urls),
]
