"""Sign-up time: the webhook that provisions each new sign-up (and, to come, the watchdog
and the metrics). The HTTP endpoint is web/views/hooks.py."""
