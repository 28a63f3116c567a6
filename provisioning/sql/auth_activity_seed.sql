-- What Supabase Auth keeps of the demo accounts (docs/account.md): identities, sessions with
-- their refresh tokens, MFA factors, and each user's events in auth.audit_log_entries, as
-- GoTrue writes them (payload `json`: action, actor_id, actor_username, log_type, traits).
-- Runs after demo_seed.sql, on its users (position i of n, ids md5('eloity-demo-' || i)).
-- Deterministic: ids are md5-derived and times follow each user's sign-up.
--   every 43rd email user  never confirmed their email (the confirmation email sent twice)
--   every 71st             banned (by the admin API) until 2027-06-01
--   every 5th email user   also signs in with Google, every 7th with GitHub
--   phone-only users       also signed in with Google under their neighbour's email:
--                          two accounts sharing one email (duplicate accounts)
--   every 13th             a verified TOTP factor (sessions at aal2); every 29th an unverified one
--   every 17th             asked for a password reset; every 19th signed up again (repeated sign-up)
-- The seven incident addresses keep their stories: never unconfirmed nor banned.

CREATE TEMP TABLE demo_n AS SELECT current_setting('eloity.demo_users')::int AS n;

UPDATE auth.users u
SET email_confirmed_at = NULL, last_sign_in_at = NULL,
    confirmation_sent_at = u.created_at + interval '2 days'
FROM demo_n d, generate_series(1, d.n) AS i
WHERE i % 43 = 21 AND NOT (i - floor(d.n * 0.55)::int BETWEEN 1 AND 7)
  AND u.id = md5('eloity-demo-' || i)::uuid AND u.email IS NOT NULL AND NOT u.is_anonymous;

UPDATE auth.users u
SET banned_until = timestamptz '2027-06-01 00:00:00+00'
FROM demo_n d, generate_series(1, d.n) AS i
WHERE i % 71 = 30 AND NOT (i - floor(d.n * 0.55)::int BETWEEN 1 AND 7)
  AND u.id = md5('eloity-demo-' || i)::uuid AND NOT u.is_anonymous;

CREATE TEMP TABLE demo_people AS
SELECT i, u.id, lower(u.email) AS email, u.phone, u.created_at AS ts, u.last_sign_in_at,
       u.email_confirmed_at IS NOT NULL OR u.phone_confirmed_at IS NOT NULL AS confirmed,
       u.banned_until IS NOT NULL AS banned, u.deleted_at,
       coalesce(u.email, u.phone) AS username,
       u.raw_app_meta_data ->> 'provider' AS provider,
       u.email IS NOT NULL AND i % 5 = 1 AS google,
       u.email IS NOT NULL AND i % 7 = 2 AS github,
       i % 13 = 4 AS totp, i % 29 = 11 AS totp_unverified
FROM demo_n d, generate_series(1, d.n) AS i
JOIN auth.users u ON u.id = md5('eloity-demo-' || i)::uuid
WHERE NOT u.is_anonymous;

-- Identities: the sign-up's own (email or phone), then the linked Google and GitHub ones.
INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, id)
SELECT p.id::text, p.id,
       CASE WHEN p.provider = 'phone'
            THEN jsonb_build_object('sub', p.id::text, 'phone', p.phone, 'phone_verified', true, 'email_verified', false)
            ELSE jsonb_build_object('sub', p.id::text, 'email', p.email, 'email_verified', p.confirmed, 'phone_verified', false)
       END,
       p.provider, CASE WHEN p.confirmed THEN p.ts + interval '5 minutes' END, p.ts, p.ts,
       md5('eloity-identity-' || p.i || '-' || p.provider)::uuid
FROM demo_people p
WHERE p.email IS NOT NULL OR p.phone IS NOT NULL;

INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, id)
SELECT lpad((100000000000000000000 + p.i * 7919)::text, 21, '1'), p.id,
       jsonb_build_object('iss', 'https://accounts.google.com', 'sub', lpad((100000000000000000000 + p.i * 7919)::text, 21, '1'),
                          'email', p.email, 'email_verified', true, 'name', 'Demo Member ' || p.i,
                          'full_name', 'Demo Member ' || p.i, 'provider_id', lpad((100000000000000000000 + p.i * 7919)::text, 21, '1'),
                          'picture', 'https://lh3.googleusercontent.com/a/demo' || p.i,
                          'avatar_url', 'https://lh3.googleusercontent.com/a/demo' || p.i),
       'google', greatest(p.last_sign_in_at, p.ts + interval '9 days'), p.ts + interval '9 days', p.ts + interval '9 days',
       md5('eloity-identity-' || p.i || '-google')::uuid
FROM demo_people p WHERE p.google AND p.confirmed;

INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, id)
SELECT (5000000 + p.i)::text, p.id,
       jsonb_build_object('iss', 'https://api.github.com', 'sub', (5000000 + p.i)::text, 'email', p.email,
                          'email_verified', true, 'user_name', 'member' || p.i, 'preferred_username', 'member' || p.i,
                          'name', 'Demo Member ' || p.i, 'avatar_url', 'https://avatars.githubusercontent.com/u/' || (5000000 + p.i)),
       'github', p.ts + interval '30 days', p.ts + interval '30 days', p.ts + interval '30 days',
       md5('eloity-identity-' || p.i || '-github')::uuid
FROM demo_people p WHERE p.github AND p.confirmed;

-- Duplicate accounts: a phone-only user later signed in with Google, whose email is the
-- previous user's (Auth kept it on the identity; the accounts were never linked).
CREATE TEMP TABLE demo_twins AS
SELECT p.i, p.id, prev.email, prev.i AS twin_of, p.ts
FROM demo_people p JOIN demo_people prev ON prev.i = p.i - 1
WHERE p.provider = 'phone' AND prev.email IS NOT NULL AND prev.confirmed AND p.deleted_at IS NULL;

INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, id)
SELECT lpad((200000000000000000000 + t.i * 7919)::text, 21, '2'), t.id,
       jsonb_build_object('iss', 'https://accounts.google.com', 'sub', lpad((200000000000000000000 + t.i * 7919)::text, 21, '2'),
                          'email', t.email, 'email_verified', true, 'name', 'Demo Member ' || t.twin_of,
                          'full_name', 'Demo Member ' || t.twin_of),
       'google', t.ts + interval '12 days', t.ts + interval '12 days', t.ts + interval '12 days',
       md5('eloity-identity-' || t.i || '-google')::uuid
FROM demo_twins t;

-- Auth keeps the providers of a user's identities in raw_app_meta_data (`providers`).
UPDATE auth.users u
SET raw_app_meta_data = u.raw_app_meta_data || jsonb_build_object('providers', x.providers)
FROM (SELECT i.user_id, jsonb_agg(i.provider ORDER BY i.created_at, i.provider) AS providers
      FROM auth.identities i JOIN demo_people p ON p.id = i.user_id GROUP BY i.user_id) AS x
WHERE u.id = x.user_id;

-- MFA factors: a verified authenticator app, or one whose enrolment was never finished.
INSERT INTO auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, secret, last_challenged_at)
SELECT md5('eloity-factor-' || p.i)::uuid, p.id,
       CASE WHEN p.totp THEN 'Authenticator app' ELSE 'New phone' END, 'totp',
       CASE WHEN p.totp THEN 'verified' ELSE 'unverified' END::auth.factor_status,
       p.ts + interval '10 minutes', p.ts + interval '10 minutes', upper(substr(md5('demo-totp-' || p.i), 1, 32)),
       -- enrolled just after the first sign-in; last asked for a code at the last sign-in
       CASE WHEN p.totp THEN greatest(p.last_sign_in_at, p.ts + interval '11 minutes') + p.i * interval '1 microsecond' END
FROM demo_people p WHERE (p.totp OR p.totp_unverified) AND p.confirmed;

-- Sessions (one, two for every third user) of users who signed in, each with its refresh token.
INSERT INTO auth.sessions (id, user_id, created_at, updated_at, factor_id, aal, not_after, refreshed_at, user_agent, ip)
SELECT md5('eloity-session-' || p.i || '-' || s)::uuid, p.id,
       p.last_sign_in_at - s * interval '6 hours', p.last_sign_in_at,
       CASE WHEN p.totp THEN md5('eloity-factor-' || p.i)::uuid END,
       CASE WHEN p.totp THEN 'aal2' ELSE 'aal1' END::auth.aal_level,
       CASE WHEN s = 2 THEN p.last_sign_in_at + interval '1 day' END,
       (p.last_sign_in_at AT TIME ZONE 'UTC'),
       (ARRAY['Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
              'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
              'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
              'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
              'Dart/3.4 (dart:io)'])[1 + (p.i + s) % 5],
       ('203.0.113.' || (p.i * 7 + s) % 250 + 1)::inet
FROM demo_people p, generate_series(1, CASE WHEN p.i % 3 = 1 THEN 2 ELSE 1 END) AS s
WHERE p.last_sign_in_at IS NOT NULL AND p.deleted_at IS NULL AND NOT p.banned;

INSERT INTO auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
SELECT '00000000-0000-0000-0000-000000000000', substr(md5('demo-refresh-' || s.id), 1, 12), s.user_id::text, false,
       s.updated_at, s.updated_at, NULL, s.id
FROM auth.sessions s JOIN demo_people p ON p.id = s.user_id;

-- The timeline: GoTrue's audit entries, k numbering each user's events.
CREATE TEMP TABLE demo_events (i int, k int, at timestamptz, actor uuid, username text, action text, log_type text, traits json, ip text);

INSERT INTO demo_events
SELECT p.i, 1, p.ts, p.id, p.username, 'user_signedup', 'team', json_build_object('provider', p.provider), '198.51.100.' || p.i % 200 + 1
FROM demo_people p
UNION ALL
SELECT p.i, 2, p.ts + interval '1 second', p.id, p.username, 'user_confirmation_requested', 'user', json_build_object('provider', p.provider), '198.51.100.' || p.i % 200 + 1
FROM demo_people p WHERE p.email IS NOT NULL
UNION ALL  -- the unconfirmed asked again, two days later
SELECT p.i, 3, p.ts + interval '2 days', p.id, p.username, 'user_confirmation_requested', 'user', json_build_object('provider', p.provider), '198.51.100.' || p.i % 200 + 1
FROM demo_people p WHERE NOT p.confirmed AND p.email IS NOT NULL
UNION ALL  -- confirming signs the user in
SELECT p.i, 4, p.ts + interval '5 minutes', p.id, p.username, 'login', 'account', json_build_object('provider', p.provider), '198.51.100.' || p.i % 200 + 1
FROM demo_people p WHERE p.confirmed
UNION ALL
SELECT p.i, 5, p.ts + interval '9 days', p.id, p.username, 'login', 'account', json_build_object('provider', 'google'), '203.0.113.' || p.i % 250 + 1
FROM demo_people p WHERE p.google AND p.confirmed
UNION ALL
SELECT p.i, 6, p.ts + interval '30 days', p.id, p.username, 'login', 'account', json_build_object('provider', 'github'), '203.0.113.' || p.i % 250 + 1
FROM demo_people p WHERE p.github AND p.confirmed
UNION ALL
SELECT p.i, 7, p.last_sign_in_at, p.id, p.username, 'login', 'account', json_build_object('provider', p.provider), '203.0.113.' || p.i % 250 + 1
FROM demo_people p WHERE p.last_sign_in_at IS NOT NULL
UNION ALL  -- refreshes: an hour apart after the last sign-in
SELECT p.i, 10 + r, p.last_sign_in_at + r * interval '1 hour', p.id, p.username, 'token_refreshed', 'token', NULL, '203.0.113.' || p.i % 250 + 1
FROM demo_people p, generate_series(1, 1 + p.i % 4) AS r WHERE p.last_sign_in_at IS NOT NULL
UNION ALL
SELECT p.i, 20, p.ts + interval '40 days', p.id, p.username, 'user_recovery_requested', 'user', NULL, '198.51.100.' || p.i % 200 + 1
FROM demo_people p WHERE p.i % 17 = 3 AND p.email IS NOT NULL
UNION ALL
SELECT p.i, 21, p.ts + interval '40 days 20 minutes', p.id, p.username, 'user_updated_password', 'user', NULL, '198.51.100.' || p.i % 200 + 1
FROM demo_people p WHERE p.i % 17 = 3 AND p.email IS NOT NULL AND p.confirmed
UNION ALL
SELECT p.i, 22, p.ts + interval '15 days', p.id, p.username, 'user_repeated_signup', 'user', json_build_object('provider', 'email'), '198.51.100.' || p.i % 200 + 1
FROM demo_people p WHERE p.i % 19 = 5 AND p.email IS NOT NULL
UNION ALL
SELECT p.i, 23, p.ts + interval '10 minutes', p.id, p.username, 'factor_in_progress', 'factor', json_build_object('factor_id', md5('eloity-factor-' || p.i)::uuid, 'factor_type', 'totp'), '203.0.113.' || p.i % 250 + 1
FROM demo_people p WHERE (p.totp OR p.totp_unverified) AND p.confirmed
UNION ALL
SELECT p.i, 24, p.ts + interval '11 minutes', p.id, p.username, 'verification_attempted', 'factor', json_build_object('factor_id', md5('eloity-factor-' || p.i)::uuid, 'factor_type', 'totp'), '203.0.113.' || p.i % 250 + 1
FROM demo_people p WHERE p.totp AND p.confirmed
UNION ALL  -- banned through the admin API
SELECT p.i, 30, p.ts + interval '60 days', '00000000-0000-0000-0000-000000000000', 'service_role', 'user_modified', 'user',
       json_build_object('user_id', p.id, 'user_email', p.email, 'user_phone', p.phone), ''
FROM demo_people p WHERE p.banned
UNION ALL
SELECT p.i, 31, p.ts + interval '60 days 1 second', p.id, p.username, 'token_revoked', 'token', NULL, ''
FROM demo_people p WHERE p.banned AND p.last_sign_in_at IS NOT NULL
UNION ALL  -- the duplicate account's own sign-up, through Google
SELECT t.i, 40, t.ts + interval '12 days', t.id, t.email, 'login', 'account', json_build_object('provider', 'google'), '203.0.113.' || t.i % 250 + 1
FROM demo_twins t;

INSERT INTO auth.audit_log_entries (instance_id, id, payload, created_at, ip_address)
SELECT '00000000-0000-0000-0000-000000000000', md5('eloity-audit-' || e.i || '-' || e.k)::uuid,
       json_build_object('actor_id', e.actor, 'actor_via_sso', false, 'actor_username', e.username,
                         'actor_name', 'Demo Member ' || e.i, 'action', e.action, 'log_type', e.log_type)::jsonb
         || CASE WHEN e.traits IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('traits', e.traits) END,
       e.at, e.ip
FROM demo_events e WHERE e.at IS NOT NULL;

DROP TABLE demo_events;
DROP TABLE demo_twins;
DROP TABLE demo_people;
DROP TABLE demo_n;
