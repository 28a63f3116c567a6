"""Pages for audit (filled in by its issue)."""

urlpatterns: list = []
