"""Everything that speaks HTTP: the admin site and its ModelAdmins, the tool pages, the
home page's figures and chart, middleware and template tags."""
