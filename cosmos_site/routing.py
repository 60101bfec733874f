from runs.routing import websocket_urlpatterns as runs_websockets

websocket_urlpatterns = [*runs_websockets]
