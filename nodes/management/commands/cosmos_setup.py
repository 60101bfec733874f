import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from cosmos_site.data_folders import create_data_folders
from nodes.models import GpuNode


class Command(BaseCommand):
    help = (
        "First-run set-up (run by `make run` after migrate): creates the data folders, an admin account "
        "with a generated password, shown once, when no superuser exists, and reports the GPU nodes."
    )

    def handle(self, *args, **options) -> None:
        create_data_folders()
        users = get_user_model()
        if not users.objects.filter(is_superuser=True).exists():
            username = settings.COSMOS_ADMIN_USERNAME
            password = secrets.token_urlsafe(12)
            users.objects.create_superuser(username=username, email="", password=password)
            self.stdout.write(self.style.SUCCESS(f"Created the admin account: {username} / {password}"))
            self.stdout.write("This password is shown only once; change it in the admin.")
        nodes = ", ".join(
            f"{node.name} ({node.launcher}{'' if node.enabled else ', disabled'})"
            for node in GpuNode.objects.all()
        )
        self.stdout.write(f"GPU nodes: {nodes or 'none'}")
