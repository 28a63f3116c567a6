"""Pages for diagnostics (filled in by its issue)."""

urlpatterns: list = []
