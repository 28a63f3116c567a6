"""The dashboard's unmanaged models against the live tables.

`AuthUser` declares the columns of `auth.users` the pages read; the app tables' models
declare their key. A column a model declares and the live table lacks makes every page
that reads the model fail (`column users.username does not exist`): this names each one,
for `manage.py check --database default` (a system check) and for the doctor.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps

from provisioning.diagnostics.findings import OK, PROBLEM, WARNING, Check
from provisioning.engine import catalog


@dataclass(frozen=True)
class ModelGap:
    model: str  # "provisioning.AuthUser"
    table: str  # "auth.users"
    column: str  # "" when the whole table is missing

    def __str__(self) -> str:
        if not self.column:
            return f"{self.model} reads {self.table}, which does not exist"
        return f"{self.model} declares {self.table}.{self.column}, which the live table lacks"


def unmanaged_models():
    return [m for m in apps.get_app_config("provisioning").get_models() if not m._meta.managed]


def model_gaps() -> list[ModelGap]:
    """Every column an unmanaged model declares that its live table lacks (one catalog
    read per table); a missing table is one gap with no column."""
    gaps = []
    for model in unmanaged_models():
        schema, name = model._meta.db_table.split('"."')
        live = catalog.columns(schema, name)
        label = f"{model._meta.app_label}.{model.__name__}"
        if not live:
            gaps.append(ModelGap(label, f"{schema}.{name}", ""))
            continue
        gaps += [
            ModelGap(label, f"{schema}.{name}", f.column) for f in model._meta.concrete_fields if f.column not in live
        ]
    return gaps


def check_model_columns() -> Check:
    """The doctor's view of `model_gaps`: a problem where a model declares a column the
    table lacks (its pages would fail), a warning where a model's whole table is missing
    (its list shows that instead of rows)."""
    name = "Models against the live tables"
    gaps = model_gaps()
    if not gaps:
        return Check(name, OK, "Every column the dashboard's models declare exists in the live tables.")
    columns = [g for g in gaps if g.column]
    status = PROBLEM if columns else WARNING
    return Check(
        name,
        status,
        " ".join(f"{g}." for g in gaps),
        "Pages read app tables through the live catalog; a model field the table lacks is a bug "
        "in the dashboard: report it with this message."
        if columns
        else "The list of a missing table says so; create the table or leave it out of the spec.",
        {"gaps": [{"model": g.model, "table": g.table, "column": g.column} for g in gaps]},
    )
