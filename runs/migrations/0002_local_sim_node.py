"""Create the `local-sim` node, so a fresh install can run without any GPU or server."""

from django.conf import settings
from django.db import migrations


def create_local_sim(apps, schema_editor):
    GpuNode = apps.get_model("runs", "GpuNode")
    GpuNode.objects.get_or_create(
        name="local-sim",
        defaults={
            "transport": "local",
            "launcher": "sim",
            "remote_root": "",
            "gpu_count": 1,
            "time_scale": settings.COSMOS_LOCAL_SIM_TIME_SCALE,
            "enabled": True,
        },
    )


class Migration(migrations.Migration):
    dependencies = [("runs", "0001_initial")]

    operations = [migrations.RunPython(create_local_sim, migrations.RunPython.noop)]
