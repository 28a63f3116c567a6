"""The two-person rule: an action that another staff member must approve before it runs.

`registry` holds the kinds of action (what each needs, runs and describes); `services`
asks, approves, refuses and expires requests, each step audited; `selectors` reads them;
`kinds` registers the actions that need a second pair of eyes today (docs/approvals.md).
"""
