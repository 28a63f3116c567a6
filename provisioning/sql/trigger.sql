-- The sign-up trigger, healthy version: every column it writes exists in the demo tables,
-- and a sign-up without an email (phone-only, anonymous) gets no `public.users` row
-- instead of failing (`public.users.email` is NOT NULL).
CREATE OR REPLACE FUNCTION public.handle_new_user()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
BEGIN
    IF NEW.email IS NOT NULL THEN
        INSERT INTO public.users (
            id, email, is_verified, points, level, role, reputation, followers_count,
            following_count, posts_count, profile_views, is_online, profile_visibility,
            allow_direct_messages, allow_notifications, preferred_currency, created_at, updated_at
        ) VALUES (
            NEW.id, NEW.email, false, 0, 'bronze', 'user', 0, 0,
            0, 0, 0, false, 'public',
            true, true, 'USDT', now(), now()
        ) ON CONFLICT (id) DO NOTHING;
    END IF;

    INSERT INTO public.profiles (
        user_id, role, status, preferences, is_verified, points, level, created_at, updated_at
    ) VALUES (
        NEW.id, 'user', 'active', '{}'::jsonb, false, 0, 'bronze', now(), now()
    ) ON CONFLICT (user_id) DO NOTHING;

    INSERT INTO public.wallets (
        user_id, btc_balance, eth_balance, usdt_balance, soft_points_balance, created_at, updated_at
    ) VALUES (
        NEW.id, 0, 0, 0, 0, now(), now()
    ) ON CONFLICT (user_id) DO NOTHING;

    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS on_auth_user_created ON auth.users;
CREATE TRIGGER on_auth_user_created
    AFTER INSERT ON auth.users
    FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();
