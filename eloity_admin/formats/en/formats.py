"""One way to write a date and a time across the dashboard, the admin's own pages included:
`12 Aug 2026, 11:24 UTC` (the staff member's time zone, named), as `local_time` writes it."""

DATETIME_FORMAT = "j M Y, H:i T"
SHORT_DATETIME_FORMAT = "j M Y, H:i T"
DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "j M Y"
TIME_FORMAT = "H:i"
