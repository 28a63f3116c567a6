"""Beyond missing rows: app rows whose copied values disagree with the auth user (value
drift), and app rows whose auth user is gone (orphans).

- `columns`: which app columns the spec copies from the auth user (the only ones ever synced).
- `statements`: the SQL, composed with psycopg.sql.
- `selectors`: the drift report (counts, a user's differing values, the list filter) and orphans.
- `services`: `sync_values` (audited, set-based, dry run first) and `remove_orphans`
  (audited, needs `provisioning.remove_orphans`, children before parents, full rows kept).
"""
