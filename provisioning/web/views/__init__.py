"""Pages the admin does not give for free: health, jobs, the load balancer's /healthz, and
the home page's context."""
