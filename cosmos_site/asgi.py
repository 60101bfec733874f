import os

from django.core.asgi import get_asgi_application

from cosmos_site.data_folders import create_data_folders

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cosmos_site.settings")
# The web process writes logs and serves the static folder (WhiteNoise looks for it as it starts).
create_data_folders()
# Initialise Django (apps, models) before anything that imports models, such as consumers.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from cosmos_site.overload import RequestAdmission  # noqa: E402
from cosmos_site.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # A bounded number of requests at once; the rest wait their turn (see cosmos_site.overload).
        "http": RequestAdmission(
            django_asgi_app,
            limit=settings.COSMOS_WEB_CONCURRENCY,
            queue_timeout=settings.COSMOS_WEB_QUEUE_TIMEOUT,
        ),
        # Sessions authenticate sockets; the origin must be one of ALLOWED_HOSTS (no cross-site sockets).
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
