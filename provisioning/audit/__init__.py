"""The audit log's own room: recording every event, sign-in (access) audit, search and the
CSV export's cells. The admin pages over it live in web/admin/audit.py."""
