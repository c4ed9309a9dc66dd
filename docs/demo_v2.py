"""The demo's pipeline, changed: what the README's "Deploying a new version" runs
`interruptible upgrade-check` on (spec/upgrades.md)."""

from dataclasses import replace

from interruptible import Migration, StepClass, StepDefinition
from interruptible._runtime._demo import DEMO_MODE  # the demo's pipeline, version "1"

plan, lookup, summarize, *rest = DEMO_MODE.steps
archive = StepDefinition(
    "archive",
    StepClass.system,
    {"name": "publish", "arguments": {"channel": "archive"}},
    label="archive (system)",
)

# Version 2 appends a step: every run of version 1 can go on with it.
APPENDED = replace(DEMO_MODE, steps=(*DEMO_MODE.steps, archive), version="2")

# Version 3 renames `summarize` to `digest`: a run that has passed it would be blocked...
RENAMED = replace(
    DEMO_MODE, steps=(plan, lookup, replace(summarize, step_id="digest"), *rest), version="3"
)
# ...unless version 1 stays registered beside it (its runs finish on it)...
BOTH = [DEMO_MODE, RENAMED]
# ...or a migration moves its runs to version 3.
MIGRATIONS = [Migration("demo-brief", "1", "3", steps={"summarize": "digest"})]
