"""The default spec: what the Eloity `handle_new_user()` trigger writes
(shared/guide/domain.md) for the columns the Eloity tables have.

The real trigger also wrote `sol_balance`, `kyc_verified`, `kyc_level` and
`kyc_documents` to `public.wallets`, which has none of them: that drift is what broke
sign-ups, so those columns are not part of the spec. Columns the trigger leaves null are
not listed. Before anything is written, each table's spec is checked against the live
catalog (`engine/plans.py`): a column the table lacks is skipped and reported.
"""

from __future__ import annotations

from provisioning.spec.vocabulary import AuthColumn, Const, JsonConst, Now, TableSpec

_ID = AuthColumn("id")

USERS = TableSpec(
    name="users",
    label="app user",
    key="id",
    values={
        "id": _ID,
        "email": AuthColumn("email"),
        "is_verified": Const(False),
        "points": Const(0),
        "level": Const("bronze"),
        "role": Const("user"),
        "reputation": Const(0),
        "followers_count": Const(0),
        "following_count": Const(0),
        "posts_count": Const(0),
        "profile_views": Const(0),
        "is_online": Const(False),
        "profile_visibility": Const("public"),
        "allow_direct_messages": Const(True),
        "allow_notifications": Const(True),
        "preferred_currency": Const("USDT"),
        "created_at": Now(),
        "updated_at": Now(),
    },
)

PROFILES = TableSpec(
    name="profiles",
    label="profile",
    key="user_id",
    values={
        "user_id": _ID,
        "role": Const("user"),
        "status": Const("active"),
        "preferences": JsonConst({}),
        "is_verified": Const(False),
        "points": Const(0),
        "level": Const("bronze"),
        "created_at": Now(),
        "updated_at": Now(),
    },
)

WALLETS = TableSpec(
    name="wallets",
    label="wallet",
    key="user_id",
    values={
        "user_id": _ID,
        "btc_balance": Const(0),
        "eth_balance": Const(0),
        "usdt_balance": Const(0),
        "soft_points_balance": Const(0),
        "created_at": Now(),
        "updated_at": Now(),
    },
)

#: The app tables in the order provisioning writes them (and takes their locks).
ELOITY: tuple[TableSpec, ...] = (USERS, PROFILES, WALLETS)
