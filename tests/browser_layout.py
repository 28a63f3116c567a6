"""Every rendered table lines up with its header: a check for the browser tests.

A box the header does not have shifts a row. The health page once had one: `.health-ok::before`
also matched `<tr class="health-ok">`, and a generated box on a table row becomes a cell of
its own, so every "ok" row moved one column to the right. Nothing failed; people saw it.

For each table on the page with a size (tables in closed `<details>` are opened for the
measurement and closed again in the same script, so the page does not change):

- the header is the last row of `<thead>`, else the first row; where the header is for
  screen readers only (out of the layout), the first row on screen shows where columns start;
- no row has more boxes (cells by `colspan`, plus a `::before`/`::after` box the row
  generates) than the header has columns;
- every cell starts where the header's column of the same index starts (bounding boxes,
  one pixel of tolerance; `rowspan` and `colspan` are followed).

`watch_table_layout(context)` runs it on every page a browser context loads (an init script
reporting through the console), `assert_tables_line_up(page)` on the page now.
"""

from __future__ import annotations

#: A JavaScript function expression: `(root) => [problem, ...]`, one sentence per problem.
LAYOUT_PROBLEMS_JS = r"""
(root) => {
  const TOLERANCE = 1;
  const problems = [];
  const closed = Array.from((root || document).querySelectorAll("details:not([open])"));
  closed.forEach((d) => { d.open = true; });
  try {
    const sized = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
    const generated = (row) => ["::before", "::after"].filter((which) => {
      const style = getComputedStyle(row, which);
      return style.content !== "none" && style.content !== "normal" && style.display !== "none";
    });
    const describe = (table, index) => {
      if (table.id) return `table #${table.id}`;
      const classes = Array.from(table.classList).map((c) => "." + c).join("");
      return `table ${index + 1} on the page${classes ? " (" + classes + ")" : ""}`;
    };
    const text = (el) => (el.innerText || "").replace(/\s+/g, " ").trim().slice(0, 40);
    Array.from((root || document).querySelectorAll("table")).forEach((table, tableIndex) => {
      if (!sized(table)) return;
      const rows = Array.from(table.rows);
      if (!rows.length) return;
      // Which column each cell starts in, following rowspan and colspan.
      const taken = rows.map(() => new Set());
      const placed = rows.map((row, r) => {
        let column = 0;
        let width = 0;
        const cells = Array.from(row.cells).map((cell) => {
          while (taken[r].has(column)) column += 1;
          const start = column;
          for (let down = 0; down < Math.max(cell.rowSpan, 1) && r + down < rows.length; down += 1) {
            for (let across = 0; across < Math.max(cell.colSpan, 1); across += 1) taken[r + down].add(start + across);
          }
          column += Math.max(cell.colSpan, 1);
          return { cell, start };
        });
        width = Math.max(column, ...Array.from(taken[r]).map((c) => c + 1), 0);
        return { row, cells, width };
      });
      const head = table.tHead && table.tHead.rows.length ? table.tHead.rows[table.tHead.rows.length - 1] : rows[0];
      const header = placed[rows.indexOf(head)];
      // A header for screen readers only (the admin's app list: `<thead class="visually-hidden">`)
      // is taken out of the table's layout: then the first row on screen shows where columns start.
      const onScreen = (row) => { const r = row.getBoundingClientRect(); return r.width > 2 && r.height > 2; };
      const laidOut = (row) => {
        for (let el = row; el && el !== table; el = el.parentElement) {
          if (["absolute", "fixed"].includes(getComputedStyle(el).position)) return false;
        }
        return onScreen(row);
      };
      const reference = laidOut(head) ? header : placed.find(({ row }) => row !== head && laidOut(row));
      const starts = new Map();
      if (reference) {
        reference.cells.forEach(({ cell, start }) => {
          if (sized(cell)) starts.set(start, cell.getBoundingClientRect().left);
        });
      }
      const where = describe(table, tableIndex);
      placed.forEach(({ row, cells, width }, r) => {
        if (!sized(row)) return;
        const extra = generated(row);
        const boxes = width + extra.length;
        const label = `row ${r + 1} ("${text(row)}")`;
        if (boxes > header.width) {
          problems.push(
            `${where}: ${label} has ${boxes} boxes, the header ${header.width} columns` +
            (extra.length ? ` (the row generates ${extra.join(" and ")} content: it becomes a cell of its own)` : "")
          );
        }
        if (row === head || row === (reference && reference.row) || !laidOut(row)) return;
        cells.forEach(({ cell, start }) => {
          if (!starts.has(start) || !sized(cell)) return;
          const left = cell.getBoundingClientRect().left;
          if (Math.abs(left - starts.get(start)) > TOLERANCE) {
            problems.push(
              `${where}: ${label}, column ${start + 1} ("${text(cell)}") starts at x=${left.toFixed(1)}, ` +
              `its header at x=${starts.get(start).toFixed(1)}`
            );
          }
        });
      });
    });
  } finally {
    closed.forEach((d) => { d.open = false; });
  }
  return problems;
}
"""

#: Printed to the console by the init script, one message per problem.
CONSOLE_PREFIX = "table-layout: "

_INIT_SCRIPT = f"""
window.addEventListener("load", () => {{
  const problems = ({LAYOUT_PROBLEMS_JS})(document);
  problems.forEach((p) => console.log({CONSOLE_PREFIX!r} + location.pathname + location.search + ": " + p));
}});
"""


def table_layout_problems(page) -> list[str]:
    """What does not line up in the page's tables now, one sentence each."""
    return page.evaluate(f"({LAYOUT_PROBLEMS_JS})(document)")


def assert_tables_line_up(page) -> None:
    problems = table_layout_problems(page)
    assert problems == [], f"tables that do not line up on {page.url}:\n" + "\n".join(problems)


def watch_table_layout(context) -> list[str]:
    """Check the tables of every page `context` loads, once it has loaded; return the list the
    problems are collected in (`page-path: problem`)."""
    problems: list[str] = []
    context.add_init_script(script=_INIT_SCRIPT)
    context.on(
        "console",
        lambda message: (
            problems.append(message.text[len(CONSOLE_PREFIX) :]) if message.text.startswith(CONSOLE_PREFIX) else None
        ),
    )
    return problems
