-- The "chained" demo shape: the Eloity app's own migration (shared/guide/domain.md, "What
-- real app schemas add"). profiles and wallets reference public.users(id), and
-- public.users has a `password` that is NOT NULL with no default, a leftover of the app's
-- own auth that neither the trigger nor the default spec fills. Idempotent.

ALTER TABLE public.users ADD COLUMN IF NOT EXISTS password text NOT NULL DEFAULT 'set-before-the-column-was-required';
ALTER TABLE public.users ALTER COLUMN password DROP DEFAULT;

-- A child row whose app user is missing could not exist under these keys.
DELETE FROM public.profiles p WHERE NOT EXISTS (SELECT 1 FROM public.users u WHERE u.id = p.user_id);
DELETE FROM public.wallets w WHERE NOT EXISTS (SELECT 1 FROM public.users u WHERE u.id = w.user_id);

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'profiles_user_id_users_fkey') THEN
        ALTER TABLE public.profiles ADD CONSTRAINT profiles_user_id_users_fkey
            FOREIGN KEY (user_id) REFERENCES public.users (id) ON DELETE CASCADE;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'wallets_user_id_users_fkey') THEN
        ALTER TABLE public.wallets ADD CONSTRAINT wallets_user_id_users_fkey
            FOREIGN KEY (user_id) REFERENCES public.users (id) ON DELETE CASCADE;
    END IF;
END
$$;
