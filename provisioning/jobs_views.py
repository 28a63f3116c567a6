"""Pages for jobs (filled in by its issue)."""

urlpatterns: list = []
