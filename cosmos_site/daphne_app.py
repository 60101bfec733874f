"""Daphne as an installed app (its `runserver`, serving ASGI) without its server loaded at every start.

daphne's own AppConfig (daphne.apps) imports daphne.server, and with it Twisted, autobahn and
cryptography, into every Django process: half a CPU second for each queue worker, beat, manage.py
command and test process, none of which serves HTTP. Only the processes that serve need it, and
each loads it itself before it serves: the `daphne` command (the Procfile's web) imports it before
the ASGI application sets Django up, and daphne's `runserver` command imports it when Django loads
the command, before anything of Twisted is imported. The one thing daphne.apps adds, a check that
daphne comes before django.contrib.staticfiles in INSTALLED_APPS, holds by the settings' order.
"""

from django.apps import AppConfig


class DaphneConfig(AppConfig):
    name = "daphne"
    label = "daphne"
    verbose_name = "Daphne"
