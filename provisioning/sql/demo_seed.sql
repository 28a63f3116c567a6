-- Demo sign-ups with the gaps seen in real projects. Deterministic: ids are md5-derived.
-- The number of users comes from the setting `eloity.demo_users` (load_demo sets it).
-- Eras of sign-up, by position i of n:
--   i <= 15%        signed up before the trigger existed: no app rows at all
--   15% .. 85%      trigger working; but 55% .. 65% lost their profile (trigger drift),
--                   and every 23rd lost its wallet
--   85% .. 92%      trigger disabled: no app rows at all
--   92% .. 100%     trigger working again
-- Every 50th is phone-only (no email), every 40th anonymous, every 60th soft-deleted.
-- Afterwards every 37th provisioned user changes their email (public.users keeps the old
-- one), and n/200 (at least 3) users deleted from auth.users leave orphaned app rows.
-- The seven addresses of the original incident sit in the profile-drift era, and their
-- slots are never phone-only, anonymous or deleted, whatever the number of users.
-- Every statement is set-based and near-linear in the number of users (a million in about
-- a minute, most of it in the sign-up trigger): the drift deletes join computed id ranges
-- on the unique user_id indexes. The temporary objects are dropped at the end, so a
-- session can seed again (load_demo --reset runs drop, schema and seed in one transaction).

CREATE OR REPLACE FUNCTION pg_temp.demo_users(lo integer, hi integer, n integer)
RETURNS SETOF auth.users
LANGUAGE sql AS $$
    SELECT
        NULL::uuid AS instance_id,
        md5('eloity-demo-' || i)::uuid AS id,
        'authenticated' AS aud,
        'authenticated' AS role,
        CASE
            WHEN k.incident THEN (ARRAY[
                'eloityhq@gmail.com', 'test@example.com', 'devilaid1900@gmail.com',
                'solozikedi@gmail.com', 'fushjones@gmail.com', 'brochrisjerry@gmail.com',
                'faroukarogundade@gmail.com'])[i - floor(n * 0.55)::int]
            WHEN k.anonymous OR k.phone_only THEN NULL
            WHEN i % 9 = 0 THEN 'Member' || i || '@Example.org'
            ELSE 'member' || i || '@example.org'
        END AS email,
        '$2a$10$' || md5('demo-password-' || i) AS encrypted_password,
        CASE WHEN k.anonymous THEN NULL ELSE ts END AS email_confirmed_at,
        NULL::timestamptz AS invited_at,
        CASE WHEN i % 11 = 0 THEN md5('confirm-' || i) ELSE '' END AS confirmation_token,
        ts AS confirmation_sent_at,
        '' AS recovery_token,
        NULL::timestamptz AS recovery_sent_at,
        '' AS email_change_token_new,
        '' AS email_change,
        NULL::timestamptz AS email_change_sent_at,
        CASE WHEN i % 3 = 0 THEN NULL ELSE ts + make_interval(hours => i % 500) END AS last_sign_in_at,
        jsonb_build_object('provider', CASE WHEN k.phone_only THEN 'phone' ELSE 'email' END) AS raw_app_meta_data,
        CASE
            WHEN k.anonymous THEN '{}'::jsonb
            ELSE jsonb_build_object('full_name', 'Demo Member ' || i, 'username', 'member' || i)
        END AS raw_user_meta_data,
        false AS is_super_admin,
        ts AS created_at,
        ts AS updated_at,
        CASE WHEN k.phone_only THEN '1555' || lpad(i::text, 7, '0') END AS phone,
        CASE WHEN k.phone_only THEN ts END AS phone_confirmed_at,
        '' AS phone_change,
        '' AS phone_change_token,
        NULL::timestamptz AS phone_change_sent_at,
        NULL::timestamptz AS confirmed_at,
        '' AS email_change_token_current,
        0::smallint AS email_change_confirm_status,
        NULL::timestamptz AS banned_until,
        '' AS reauthentication_token,
        NULL::timestamptz AS reauthentication_sent_at,
        false AS is_sso_user,
        CASE WHEN k.deleted THEN ts + interval '3 days' END AS deleted_at,
        k.anonymous AS is_anonymous
    FROM generate_series(lo, hi) AS i,
         LATERAL (SELECT timestamptz '2026-05-04 09:00:00+00'
                         + (i - 1) * (interval '182 days' / n) AS ts) AS t,
         LATERAL (SELECT i - floor(n * 0.55)::int BETWEEN 1 AND 7 AS incident) AS s,
         LATERAL (SELECT s.incident,
                         NOT s.incident AND i % 40 = 13 AS anonymous,
                         NOT s.incident AND i % 50 = 7 AS phone_only,
                         NOT s.incident AND i % 60 = 29 AS deleted) AS k
$$;

CREATE TEMP TABLE demo_bounds AS
SELECT n,
       floor(n * 0.15)::int AS before_trigger,
       floor(n * 0.55)::int AS drift_from,
       greatest(floor(n * 0.65)::int, floor(n * 0.55)::int + 7) AS drift_to,  -- the seven fit
       floor(n * 0.85)::int AS disabled_from,
       floor(n * 0.92)::int AS disabled_to
FROM (SELECT current_setting('eloity.demo_users')::int AS n) AS s;

-- `confirmed_at` is generated, so the insert names every other column.
CREATE OR REPLACE FUNCTION pg_temp.insert_demo_users(lo integer, hi integer, n integer)
RETURNS void
LANGUAGE sql AS $$
    INSERT INTO auth.users (instance_id, id, aud, role, email, encrypted_password,
        email_confirmed_at, invited_at, confirmation_token, confirmation_sent_at, recovery_token,
        recovery_sent_at, email_change_token_new, email_change, email_change_sent_at,
        last_sign_in_at, raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at,
        updated_at, phone, phone_confirmed_at, phone_change, phone_change_token,
        phone_change_sent_at, email_change_token_current, email_change_confirm_status,
        banned_until, reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at,
        is_anonymous)
    SELECT instance_id, id, aud, role, email, encrypted_password,
        email_confirmed_at, invited_at, confirmation_token, confirmation_sent_at, recovery_token,
        recovery_sent_at, email_change_token_new, email_change, email_change_sent_at,
        last_sign_in_at, raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at,
        updated_at, phone, phone_confirmed_at, phone_change, phone_change_token,
        phone_change_sent_at, email_change_token_current, email_change_confirm_status,
        banned_until, reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at,
        is_anonymous
    FROM pg_temp.demo_users(lo, hi, n)
    ON CONFLICT (id) DO NOTHING
$$;

-- Era 1: before the trigger existed.
ALTER TABLE auth.users DISABLE TRIGGER on_auth_user_created;
SELECT pg_temp.insert_demo_users(1, before_trigger, n) FROM demo_bounds;

-- Era 2: the trigger works.
ALTER TABLE auth.users ENABLE TRIGGER on_auth_user_created;
SELECT pg_temp.insert_demo_users(before_trigger + 1, disabled_from, n) FROM demo_bounds;

-- Drift: the trigger skipped profiles for a stretch of sign-ups, and some wallets.
-- A join on the computed ids, never `user_id IN (SELECT ... generate_series(b...))`: that
-- subquery depends on demo_bounds, so it ran again for every row (quadratic).
DELETE FROM public.profiles p
USING demo_bounds b, generate_series(b.drift_from + 1, b.drift_to) AS i
WHERE p.user_id = md5('eloity-demo-' || i)::uuid;
DELETE FROM public.wallets w
USING demo_bounds b, generate_series(b.before_trigger + 1, b.disabled_from) AS i
WHERE i % 23 = 0 AND w.user_id = md5('eloity-demo-' || i)::uuid;

-- Era 3: somebody disabled the trigger.
ALTER TABLE auth.users DISABLE TRIGGER on_auth_user_created;
SELECT pg_temp.insert_demo_users(disabled_from + 1, disabled_to, n) FROM demo_bounds;

-- Era 4: the trigger is back.
ALTER TABLE auth.users ENABLE TRIGGER on_auth_user_created;
SELECT pg_temp.insert_demo_users(disabled_to + 1, n, n) FROM demo_bounds;

-- Life after sign-up: some users changed their email in Supabase Auth (every 37th of the
-- provisioned eras, never an incident address), so public.users still holds the old one;
-- and some users were deleted from auth.users outright, leaving their app rows behind
-- (orphans: rows keyed to ids no auth user has, one in every 200 users, at least three).
UPDATE auth.users u
SET email = 'moved' || i || '@example.net', updated_at = u.updated_at + interval '20 days'
FROM demo_bounds b, generate_series(b.before_trigger + 1, b.disabled_from) AS i
WHERE i % 37 = 0 AND NOT (i - b.drift_from BETWEEN 1 AND 7) AND u.id = md5('eloity-demo-' || i)::uuid
  AND u.email IS NOT NULL AND u.deleted_at IS NULL;

CREATE TEMP TABLE demo_orphans AS
SELECT md5('eloity-demo-deleted-' || j)::uuid AS id, 'deleted' || j || '@example.org' AS email,
       timestamptz '2026-05-04 09:00:00+00' + j * interval '9 days' AS ts
FROM demo_bounds b, generate_series(1, greatest(3, b.n / 200)) AS j;
INSERT INTO public.users (id, email, created_at, updated_at)
SELECT id, email, ts, ts FROM demo_orphans ON CONFLICT DO NOTHING;
INSERT INTO public.profiles (user_id, created_at, updated_at)
SELECT id, ts, ts FROM demo_orphans ON CONFLICT DO NOTHING;
INSERT INTO public.wallets (user_id, created_at, updated_at)
SELECT id, ts, ts FROM demo_orphans ON CONFLICT DO NOTHING;
DROP TABLE demo_orphans;

DROP TABLE demo_bounds;
DROP FUNCTION pg_temp.insert_demo_users(integer, integer, integer);
DROP FUNCTION pg_temp.demo_users(integer, integer, integer);
