-- The Eloity app's own tables, column for column as its drizzle migration creates them
-- (migrations/0000_tired_bloodaxe.sql in Neocreb/frontend-eloity-unified-ecosys: CREATE TABLE
-- "users", "profiles", "wallets", and the foreign keys on them; no CREATE INDEX touches
-- them). The rows already there are kept (the demo's trigger made them), so a test can make
-- its sign-ups first and then turn the schema into this one.
--
-- What it means for a sign-up: public.users has six columns (no username, no full_name, ...);
-- users.password is NOT NULL with no default; profiles.user_id and wallets.user_id have no
-- index and no unique key; both reference public.users(id) ON DELETE CASCADE. The demo's
-- sign-up function writes columns these tables lack, so a sign-up after this fails, as
-- Eloity's did ("Database error saving new user").

ALTER TABLE public.users RENAME TO users_before_migration;
ALTER TABLE public.profiles RENAME TO profiles_before_migration;
ALTER TABLE public.wallets RENAME TO wallets_before_migration;

CREATE TABLE "public"."users" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"email" text NOT NULL,
	"password" text NOT NULL,
	"email_confirmed" boolean DEFAULT false,
	"created_at" timestamp DEFAULT now(),
	"updated_at" timestamp DEFAULT now(),
	CONSTRAINT "users_email_unique" UNIQUE("email")
);

CREATE TABLE "public"."profiles" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"username" text,
	"full_name" text,
	"name" text,
	"bio" text,
	"avatar" text,
	"avatar_url" text,
	"is_verified" boolean DEFAULT false,
	"level" text DEFAULT 'bronze',
	"points" integer DEFAULT 0,
	"role" text DEFAULT 'user',
	"status" text DEFAULT 'active',
	"bank_account_name" text,
	"bank_account_number" text,
	"bank_name" text,
	"preferences" jsonb,
	"created_at" timestamp DEFAULT now(),
	"updated_at" timestamp DEFAULT now(),
	CONSTRAINT "profiles_username_unique" UNIQUE("username")
);

CREATE TABLE "public"."wallets" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"usdt_balance" numeric(20, 8) DEFAULT '0',
	"eth_balance" numeric(20, 8) DEFAULT '0',
	"btc_balance" numeric(20, 8) DEFAULT '0',
	"soft_points_balance" numeric(20, 2) DEFAULT '0',
	"is_active" boolean DEFAULT true,
	"is_frozen" boolean DEFAULT false,
	"freeze_reason" text,
	"frozen_by" uuid,
	"frozen_at" timestamp,
	"backup_seed" text,
	"last_backup_at" timestamp,
	"created_at" timestamp DEFAULT now(),
	"updated_at" timestamp DEFAULT now()
);

-- The rows the demo's trigger wrote, in the columns both shapes have. A password the app
-- never had: the placeholder a project's own backfill would leave.
INSERT INTO public.users (id, email, password, created_at, updated_at)
    SELECT id, email, 'set-before-the-column-was-required', created_at, updated_at
    FROM public.users_before_migration;
INSERT INTO public.profiles (id, user_id, username, full_name, name, bio, avatar, avatar_url, is_verified,
        level, points, role, status, preferences, created_at, updated_at)
    SELECT p.id, p.user_id, p.username, p.full_name, p.name, p.bio, p.avatar, p.avatar_url, p.is_verified,
        p.level, p.points, p.role, p.status, p.preferences, p.created_at, p.updated_at
    FROM public.profiles_before_migration p
    WHERE EXISTS (SELECT 1 FROM public.users u WHERE u.id = p.user_id);
INSERT INTO public.wallets (id, user_id, usdt_balance, eth_balance, btc_balance, soft_points_balance,
        is_active, is_frozen, created_at, updated_at)
    SELECT w.id, w.user_id, w.usdt_balance, w.eth_balance, w.btc_balance, w.soft_points_balance,
        w.is_active, w.is_frozen, w.created_at, w.updated_at
    FROM public.wallets_before_migration w
    WHERE EXISTS (SELECT 1 FROM public.users u WHERE u.id = w.user_id);

DROP TABLE public.users_before_migration, public.profiles_before_migration, public.wallets_before_migration CASCADE;

ALTER TABLE "public"."profiles" ADD CONSTRAINT "profiles_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;
ALTER TABLE "public"."wallets" ADD CONSTRAINT "wallets_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;
ALTER TABLE "public"."wallets" ADD CONSTRAINT "wallets_frozen_by_users_id_fk" FOREIGN KEY ("frozen_by") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;

-- What a hosted project grants the API roles on every table in public (as the demo's schema).
DO $$
BEGIN
    IF (SELECT count(*) FROM pg_roles WHERE rolname IN ('anon', 'authenticated')) = 2 THEN
        GRANT SELECT ON public.users, public.profiles, public.wallets TO anon, authenticated;
    END IF;
END $$;
