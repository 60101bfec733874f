import os

from django.core.wsgi import get_wsgi_application

from cosmos_site.data_folders import create_data_folders

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cosmos_site.settings")
# The web process writes logs and serves the static folder (WhiteNoise looks for it as it starts).
create_data_folders()
application = get_wsgi_application()
