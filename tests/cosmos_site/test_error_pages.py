"""The site's own 404, 403 and 500 pages (templates/404.html, 403.html, 403_csrf.html, 500.html)."""

import pytest
from django.core.exceptions import PermissionDenied
from django.template.loader import render_to_string
from django.test import Client
from django.urls import include, path


def forbidden(request):
    raise PermissionDenied


def broken(request):
    raise RuntimeError("a bug")


# This module is the URLconf of the tests marked with it: the site's URLs and two that fail.
urlpatterns = [path("forbidden/", forbidden), path("broken/", broken), path("", include("cosmos_site.urls"))]
pytestmark = pytest.mark.urls(__name__)


def test_it_shows_a_styled_not_found_page_that_says_nothing_of_others_objects(client, alice):
    client.force_login(alice)
    response = client.get("/runs/rs_notthere/")
    html = response.content.decode()
    assert response.status_code == 404
    assert "<h1>Not found</h1>" in html and 'href="/static/cosmos.css"' in html
    assert ">Dashboard</a>" in html and "Log out alice" in html  # the site's own page, with its menu


def test_it_shows_a_styled_forbidden_page(client, alice):
    client.force_login(alice)
    response = client.get("/forbidden/")
    assert response.status_code == 403
    assert "<h1>Not allowed</h1>" in response.content.decode()


def test_it_explains_a_form_sent_without_its_security_token(alice):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "alice", "password": "x"})
    html = response.content.decode()
    assert response.status_code == 403
    assert "<h1>Not allowed</h1>" in html and "security token" in html


def test_it_shows_a_styled_server_error_page(client, alice):
    client.force_login(alice)
    client.raise_request_exception = False
    response = client.get("/broken/")
    html = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in html and 'href="/static/cosmos.css"' in html
    assert "a bug" not in html


def test_it_renders_the_server_error_page_without_a_request_or_a_database():
    # No db fixture: pytest-django makes any query an error, so this renders it with none.
    html = render_to_string("500.html")
    assert "Something went wrong on our side" in html and "favicon.svg" in html
