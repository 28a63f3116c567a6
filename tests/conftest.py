"""Tests run on real PostgreSQL (the embedded server unless DATABASE_URL is set), in a test
database that carries the Supabase-like demo schema and the real sign-up trigger."""

from __future__ import annotations

import pytest

from tests.leftovers import pytest_sessionfinish  # noqa: F401 - fails the run on a leaked process


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    from provisioning import demo

    with django_db_blocker.unblock():
        # The test runner created this database: it may carry demo rows.
        demo.mark_as_demo_database()
        demo.install_schema()


@pytest.fixture
def support_groups(db):
    from django.apps import apps

    from provisioning.groups import ensure_support_groups

    ensure_support_groups(apps)


@pytest.fixture
def provisioner(support_groups, django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("prov", password="prov-password", is_staff=True)
    user.groups.add(Group.objects.get(name="Support provisioners"))
    return user


@pytest.fixture
def viewer(support_groups, django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("view", password="view-password", is_staff=True)
    user.groups.add(Group.objects.get(name="Support viewers"))
    return user


@pytest.fixture
def provisioner_client(client, provisioner):
    client.force_login(provisioner)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def cli_actor():
    from provisioning.actors import Actor

    return Actor.command_line()


@pytest.fixture
def clean_app_tables(transactional_db):
    """For tests that commit: empty auth.users and the app tables afterwards (Django's own
    flush only knows Django's tables)."""
    yield
    from tests.factories import truncate_app_tables

    truncate_app_tables()
