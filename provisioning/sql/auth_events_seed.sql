-- `load_demo --auth-events N`: fill auth.audit_log_entries up to N entries, as GoTrue writes
-- them (payload `json`: actor_id, actor_username, actor_via_sso, action, log_type, traits;
-- internal/models/audit_log_entry.go), spread over the live demo users' time since sign-up.
-- Set-based, deterministic (entry k's id is md5('eloity-bulk-audit-' || k)), idempotent:
-- entries already there are not written again. A realistic year, mostly token refreshes:
--   70% token_refreshed, 12% login, 8% logout, 4% token_revoked, 2% user_recovery_requested,
--   1% user_updated_password, 1% user_repeated_signup, 1% user_modified (the admin API, by
--   the service role), 1% factor_in_progress.
-- One entry in 1,000 goes to the first ten users: accounts with thousands of events.
-- Reads eloity.demo_auth_events (the N asked for).

DROP TABLE IF EXISTS demo_people, demo_range;
CREATE TEMP TABLE demo_people ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY u.id) AS i, u.id, coalesce(u.email, u.phone, '') AS username,
       coalesce(u.raw_app_meta_data ->> 'provider', 'email') AS provider,
       coalesce(u.created_at, now() - interval '1 year') AS since
FROM auth.users u WHERE u.deleted_at IS NULL;

CREATE TEMP TABLE demo_range ON COMMIT DROP AS
SELECT (SELECT count(*) FROM auth.audit_log_entries) AS have,
       current_setting('eloity.demo_auth_events')::bigint AS want,
       (SELECT count(*) FROM demo_people) AS people;

INSERT INTO auth.audit_log_entries (instance_id, id, payload, created_at, ip_address)
SELECT '00000000-0000-0000-0000-000000000000', md5('eloity-bulk-audit-' || e.k)::uuid,
       CASE WHEN e.action = 'user_modified'
            THEN json_build_object('actor_id', '00000000-0000-0000-0000-000000000000', 'actor_via_sso', false,
                                   'actor_username', 'service_role', 'action', e.action, 'log_type', 'user',
                                   'traits', json_build_object('user_id', p.id, 'user_email', p.username))
            WHEN e.action IN ('login', 'user_repeated_signup')
            THEN json_build_object('actor_id', p.id, 'actor_via_sso', false, 'actor_username', p.username,
                                   'action', e.action, 'log_type', CASE WHEN e.action = 'login' THEN 'account' ELSE 'user' END,
                                   'traits', json_build_object('provider', p.provider))
            WHEN e.action = 'factor_in_progress'
            THEN json_build_object('actor_id', p.id, 'actor_via_sso', false, 'actor_username', p.username,
                                   'action', e.action, 'log_type', 'factor',
                                   'traits', json_build_object('factor_id', md5('eloity-bulk-factor-' || p.i)::uuid, 'factor_type', 'totp'))
            ELSE json_build_object('actor_id', p.id, 'actor_via_sso', false, 'actor_username', p.username,
                                   'action', e.action,
                                   'log_type', CASE e.action WHEN 'logout' THEN 'account' WHEN 'token_refreshed' THEN 'token'
                                                             WHEN 'token_revoked' THEN 'token' ELSE 'user' END)
       END,
       -- a point in the user's time since sign-up, by the golden ratio: spread, not clustered
       p.since + (now() - p.since) * ((e.k * 0.6180339887498949) - floor(e.k * 0.6180339887498949)),
       '203.0.113.' || (e.k % 250 + 1)
FROM (
    SELECT k,
           CASE WHEN k % 1000 = 0 THEN 1 + (k / 1000) % least(10, r.people)
                ELSE 1 + (k * 2654435761) % r.people END AS i,
           CASE WHEN k % 100 < 70 THEN 'token_refreshed' WHEN k % 100 < 82 THEN 'login'
                WHEN k % 100 < 90 THEN 'logout' WHEN k % 100 < 94 THEN 'token_revoked'
                WHEN k % 100 < 96 THEN 'user_recovery_requested' WHEN k % 100 < 97 THEN 'user_updated_password'
                WHEN k % 100 < 98 THEN 'user_repeated_signup' WHEN k % 100 < 99 THEN 'user_modified'
                ELSE 'factor_in_progress' END AS action
    FROM demo_range r, generate_series(r.have + 1, r.want) AS k
    WHERE r.people > 0
) AS e
JOIN demo_people p ON p.i = e.i
ON CONFLICT (id) DO NOTHING;
