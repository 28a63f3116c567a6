"""The provisioning engine: the live catalog, plans, every provisioning SQL statement,
selectors (read) and services (write), and the generated sign-up trigger."""
