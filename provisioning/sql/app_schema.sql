-- The Eloity app tables in `public`, as in the Eloity project (shared/guide/domain.md).
-- `public.profiles` is created in shape A here; tests also build shape B. No foreign keys
-- to auth.users, as in the Eloity project: orphaned app rows are possible and diagnosed.
CREATE TABLE IF NOT EXISTS public.users (
    id uuid PRIMARY KEY,
    email text NOT NULL UNIQUE,
    username text UNIQUE,
    full_name text,
    avatar_url text,
    banner_url text,
    bio text,
    location text,
    website text,
    phone text,
    date_of_birth text,
    gender text,
    is_verified boolean DEFAULT false,
    points integer DEFAULT 0,
    level text DEFAULT 'bronze',
    role text DEFAULT 'user',
    reputation integer DEFAULT 0,
    followers_count integer DEFAULT 0,
    following_count integer DEFAULT 0,
    posts_count integer DEFAULT 0,
    profile_views integer DEFAULT 0,
    is_online boolean DEFAULT false,
    last_active timestamp,
    profile_visibility text DEFAULT 'public',
    allow_direct_messages boolean DEFAULT true,
    allow_notifications boolean DEFAULT true,
    preferred_currency text DEFAULT 'USD',
    timezone text,
    created_at timestamp DEFAULT now(),
    updated_at timestamp DEFAULT now()
);

CREATE TABLE IF NOT EXISTS public.profiles (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    username text UNIQUE,
    full_name text,
    name text,
    bio text,
    avatar text,
    avatar_url text,
    is_verified boolean DEFAULT false,
    level text DEFAULT 'bronze',
    points integer DEFAULT 0,
    role text DEFAULT 'user',
    status text DEFAULT 'active',
    bank_account_name text,
    bank_account_number text,
    bank_name text,
    preferences jsonb,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now()
);
-- The Eloity project added this after duplicate profiles appeared; `ON CONFLICT (user_id)`
-- in the trigger needs it. Shape A in the wild may lack it: diagnostics report that.
CREATE UNIQUE INDEX IF NOT EXISTS profiles_user_id_key ON public.profiles (user_id);

CREATE TABLE IF NOT EXISTS public.wallets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL UNIQUE,
    usdt_balance numeric(20, 8) DEFAULT 0,
    eth_balance numeric(20, 8) DEFAULT 0,
    btc_balance numeric(20, 8) DEFAULT 0,
    soft_points_balance numeric(20, 2) DEFAULT 0,
    is_active boolean DEFAULT true,
    is_frozen boolean DEFAULT false,
    freeze_reason text,
    frozen_by uuid,
    frozen_at timestamp,
    backup_seed text,
    last_backup_at timestamp,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now()
);

-- What a hosted project grants the API roles on the app tables (Supabase grants them every
-- table in public by default; row level security, where enabled, then decides the rows).
DO $$
BEGIN
    IF (SELECT count(*) FROM pg_roles WHERE rolname IN ('anon', 'authenticated')) = 2 THEN
        GRANT USAGE ON SCHEMA public TO anon, authenticated;
        GRANT SELECT ON public.users, public.profiles, public.wallets TO anon, authenticated;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO anon, authenticated;
    END IF;
END $$;

-- Row level security, as Supabase's Security Advisor asks of every table in an exposed schema
-- (lint rls_disabled_in_public): with the grants above and RLS off, anyone holding the
-- project's anon key (public in every app) could read every row, wallet balances included.
-- Each signed-in user reads their own rows; the sign-up trigger (SECURITY DEFINER, run as the
-- tables' owner) and the dashboard's role (BYPASSRLS, see the README) are not limited by it.
-- `(SELECT auth.uid())` is evaluated once per query, not per row (lint auth_rls_initplan).
-- The policies' names are those the health check proposes. Idempotent.
ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.wallets ENABLE ROW LEVEL SECURITY;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public' AND tablename = 'users'
                       AND policyname = 'Users read their own app user') THEN
            CREATE POLICY "Users read their own app user" ON public.users
                FOR SELECT TO authenticated USING ((SELECT auth.uid()) = id);
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public' AND tablename = 'profiles'
                       AND policyname = 'Users read their own profile') THEN
            CREATE POLICY "Users read their own profile" ON public.profiles
                FOR SELECT TO authenticated USING ((SELECT auth.uid()) = user_id);
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public' AND tablename = 'wallets'
                       AND policyname = 'Users read their own wallet') THEN
            CREATE POLICY "Users read their own wallet" ON public.wallets
                FOR SELECT TO authenticated USING ((SELECT auth.uid()) = user_id);
        END IF;
    END IF;
END $$;
