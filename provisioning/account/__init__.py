"""The whole account: what Supabase Auth knows about a user (sign-in methods, sessions, MFA
factors, its own event log), read straight from `auth`, non-secret columns only."""
