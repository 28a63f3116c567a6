"""Pages for home (filled in by its issue)."""

urlpatterns: list = []
