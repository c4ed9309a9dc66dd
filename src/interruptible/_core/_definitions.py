"""Definitions: what a mode declares, its fingerprint, and whether a run may move to another one.

Theory of operation
-------------------
A run journals, in its `run_requested`, the *definition document* of its mode (for `Sequence`:
its steps with their classes, inputs and policies; for `AgentLoop`: its tools, limits and
policies; for a mode of the application's own: its name, `version` and `describe()`) and that
document's *fingerprint*, a hash of its canonical JSON (UPG-1). The built-in modes are rebuilt
from their document, so a journal folds the same way whatever code reads it later (UPG-2).

When a run of one definition meets code that registers another (a resume, a recovery, a
takeover, a gate answer, a late effect answer), `follow` decides whether the run may go on under
the new definition: it feeds the run's planned steps, oldest first, through the *new* mode, as a
fresh run of it would see them, and asks at each one whether the new mode plans that very step
(UPG-3). The first step where it does not is the *first differing step*, and the run is
`blocked`; when every planned step agrees, the run is `compatible`, and the context the new mode
computed is the one it continues with. A `Migration` the application declares (from one version
to another: renamed or dropped steps, and a transform of the context) goes through the same
check, over the renamed steps, with one leniency: the steps that have ended may have changed their
class or input, since they never run again (UPG-5). Whichever way, the move is a journaled event
(`run_upgraded`), so replay never consults the code that decided it.

Pure: no clock, no IO; the coordinator applies `run_upgraded` with these same functions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass, field, replace
from typing import Final

from .._codec import value_from_json, value_to_json
from .._lifecycle import LIVE_STEP_STATUSES, StepStatus
from .._vocabulary import JsonValue, StepDefinition, StepPolicy
from ._modes import AgentLoop, Mode, NextStep, Sequence
from ._state import RunState

# Enough to tell apart every definition an application will ever register (64 bits), short
# enough to read in a report and a log line.
FINGERPRINT_LENGTH: Final = 16


def definition_of(mode: Mode) -> JsonValue:
    """The JSON document of what `mode` declares (UPG-1)."""
    document: dict[str, JsonValue]
    if isinstance(mode, Sequence):
        document = {
            "kind": "sequence",
            "name": mode.name,
            "version": mode.version,
            "steps": [value_to_json(step) for step in mode.steps],
        }
    elif isinstance(mode, AgentLoop):
        document = {
            "kind": "agent_loop",
            "name": mode.name,
            "version": mode.version,
            "tools": list(mode.tools),
            "max_turns": mode.max_turns,
            "llm_policy": value_to_json(mode.llm_policy),
            "tool_policy": value_to_json(mode.tool_policy),
        }
    else:
        document = {}
    if document:
        if type(mode) not in (Sequence, AgentLoop):
            # A subclass behaves as its own code says: it is rebuilt only as the class registered
            # under its name, and only while that class is the one named here (UPG-2).
            document["class"] = _class_name(mode)
        return document
    describe = getattr(mode, "describe", None)
    return {
        "kind": "mode",
        "name": mode.name,
        "version": getattr(mode, "version", None),
        "declared": describe() if callable(describe) else None,
    }


def fingerprint_of(definition: JsonValue) -> str:
    """The fingerprint of a definition document: a hash of its canonical JSON (UPG-1)."""
    import hashlib  # here, not at the top: `import interruptible` does without it

    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:FINGERPRINT_LENGTH]


def version_of(definition: JsonValue) -> str | None:
    """The version a definition document names, if any."""
    if isinstance(definition, Mapping):
        version = definition.get("version")
        return version if isinstance(version, str) else None
    return None


def _class_name(mode: object) -> str:
    return f"{type(mode).__module__}.{type(mode).__qualname__}"


def rebuild(definition: JsonValue, like: Mode | None = None) -> Mode | None:
    """The mode a definition document describes: a `Sequence` or an `AgentLoop`, or a subclass
    of one as `like` (the mode registered under its name) if that is of the class the document
    names; None for a mode of the application's own (or a document this version cannot read)."""
    if not isinstance(definition, Mapping):
        return None
    named = definition.get("class")
    if named is not None and (like is None or _class_name(like) != named):
        return None
    try:
        kind = definition.get("kind")
        if kind == "sequence":
            steps = tuple(value_from_json(StepDefinition, step) for step in definition["steps"])
            if named is not None and isinstance(like, Sequence):
                return replace(like, steps=steps, version=definition.get("version"))
            return Sequence(definition["name"], steps, definition.get("version"))
        if kind == "agent_loop":
            fields = {
                "tools": tuple(definition["tools"]),
                "max_turns": definition["max_turns"],
                "llm_policy": value_from_json(StepPolicy, definition["llm_policy"]),
                "tool_policy": value_from_json(StepPolicy, definition["tool_policy"]),
                "version": definition.get("version"),
            }
            if named is not None and isinstance(like, AgentLoop):
                return replace(like, **fields)
            return AgentLoop(definition["name"], **fields)
    except Exception:  # a damaged or foreign document: not rebuilt, like a mode of one's own
        return None
    return None


@dataclass(frozen=True, slots=True)
class Migration:
    """How runs of one version of a mode move to another (UPG-5): renamed steps (`None` drops
    one whose step the new version no longer has), and a transform of the run's context.

    The transform gets the context the new version computes for the run (its kept steps fed
    through it under their new ids) and returns the one the run continues with. It may change
    what the context holds, not where the run is: the new mode must plan the same next step
    from it.
    """

    mode: str
    from_version: str
    to_version: str
    steps: Mapping[str, str | None] = field(default_factory=dict)
    context: Callable[[JsonValue], JsonValue] | None = None

    @property
    def name(self) -> str:
        """How reports and the journal name this migration."""
        return f"{self.mode}:{self.from_version}->{self.to_version}"


@dataclass(frozen=True, slots=True)
class Followed:
    """A run the new mode plans exactly: its steps' new definitions, and its new context."""

    definitions: tuple[StepDefinition, ...]
    context: JsonValue


@dataclass(frozen=True, slots=True)
class Differs:
    """Where the new mode parts from the run: the first differing step, and how."""

    step_id: str | None
    detail: str


def follow(
    new: Mode,
    run: RunState,
    renames: Mapping[str, str | None] | None = None,
    *,
    lenient: bool = False,
) -> Followed | Differs:
    """Feed the run's planned steps through `new` (UPG-3); with `renames`, under their new ids
    (a migration's, UPG-5), and `lenient` about the class and input of ended steps."""
    renames = renames or {}
    try:
        context = new.start(run.input)
    except Exception as exc:
        first = run.steps[0].step_id if run.steps else None
        return Differs(first, f"the new definition refuses the run's input ({exc})")
    definitions: list[StepDefinition] = []
    steps = run.steps
    for index, step in enumerate(steps):
        old = step.definition
        step_id = renames.get(old.step_id, old.step_id)
        if step_id is None:
            if step.status in LIVE_STEP_STATUSES:
                return Differs(old.step_id, f"step {old.step_id!r} is live and cannot be dropped")
            continue
        if step_id != old.step_id and step.status in LIVE_STEP_STATUSES:
            return Differs(old.step_id, f"step {old.step_id!r} is live and cannot be renamed")
        try:
            plan = new.plan(context)
        except Exception as exc:
            return Differs(step_id, f"the new definition cannot plan past it ({exc})")
        if not isinstance(plan, NextStep):
            return Differs(step_id, "the new definition has no such step at this position")
        planned = plan.step
        if planned.step_id != step_id:
            return Differs(
                step_id,
                f"the new definition plans {planned.step_id!r} where the run planned {step_id!r}",
            )
        difference = _difference(step.status, step.attempt, old, planned, lenient)
        if difference is not None:
            return Differs(step_id, difference)
        definitions.append(planned)
        try:
            if step.status is StepStatus.completed and step.result is not None:
                context = new.on_result(context, replace(step.result, step_id=step_id))
            elif step.status is StepStatus.failed and step.failure is not None:
                context = new.on_failure(context, replace(step.failure, step_id=step_id))
            elif index + 1 < len(steps):
                # Only the last planned step may be unfinished (the run's position).
                later = steps[index + 1].step_id
                return Differs(later, f"step {later!r} was planned after an unfinished one")
        except Exception as exc:
            return Differs(step_id, f"the new definition refuses its kept outcome ({exc})")
    return Followed(tuple(definitions), context)


def _difference(
    status: StepStatus, attempt: int, old: StepDefinition, new: StepDefinition, lenient: bool
) -> str | None:
    """Why `new` may not stand for the planned step `old`, if it may not (UPG-3)."""
    live = status in LIVE_STEP_STATUSES
    ended = status in (StepStatus.completed, StepStatus.failed, StepStatus.canceled)
    started = attempt > 0
    if started and not (lenient and ended):
        if new.step_class is not old.step_class:
            return f"its class changed from {old.step_class.value} to {new.step_class.value}"
        if new.input != old.input:
            return "its input changed, and it has started"
    if live and new.policy != old.policy:
        return "its policy changed while an attempt of it is in flight"
    return None


def next_step_id(mode: Mode, context: JsonValue) -> str | None:
    """The id of the step `mode` plans next from `context` (None: none, or it cannot tell)."""
    try:
        plan = mode.plan(context)
    except Exception:
        return None
    return plan.step.step_id if isinstance(plan, NextStep) else None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What meeting the registered definitions means for one run (UPG-3..UPG-5).

    `kind` is `current` (it follows a registered definition), `compatible` (the newest plans it
    exactly), `migrates` (through `migration`), `blocked` (neither; `step_id` is the first
    differing step) or `unversioned` (journaled before runs carried a definition: it goes on
    with the mode registered under its name, as it did before, UPG-6).
    """

    kind: str
    run_fingerprint: str | None
    current_fingerprint: str | None
    step_id: str | None = None
    detail: str = ""
    migration: Migration | None = None
    definition: JsonValue = None  # the definition it moves to
    context: JsonValue = None  # its context under that definition
    renames: Mapping[str, str | None] | None = None

    @property
    def moves(self) -> bool:
        """Whether the run moves to the newest definition (a `run_upgraded` is journaled)."""
        return self.kind in ("compatible", "migrates")


def judge(
    run: RunState,
    versions: Mapping[str, Mode],
    current: Mapping[str, tuple[str, JsonValue]],
    migrations: SequenceOf[Migration] = (),
) -> Verdict:
    """Whether `run` follows a registered definition, may move to the newest registered one
    of its mode (as it is, or through one of `migrations`), or is blocked (UPG-3..UPG-5)."""
    fingerprint = run.fingerprint
    if fingerprint is None:
        return Verdict("unversioned", None, None, detail="journaled without a definition")
    if fingerprint in versions:
        return Verdict("current", fingerprint, fingerprint)
    newest = current.get(run.mode)
    if newest is None:
        return Verdict(
            "blocked", fingerprint, None, detail=f"no mode named {run.mode!r} is registered"
        )
    new_fingerprint, definition = newest
    new = versions[new_fingerprint]
    followed = follow(new, run)
    if isinstance(followed, Followed):
        return Verdict(
            "compatible",
            fingerprint,
            new_fingerprint,
            definition=definition,
            context=followed.context,
        )
    old_version = version_of(run.definition)
    new_version = getattr(new, "version", None)
    migration = next(
        (
            m
            for m in migrations
            if m.mode == run.mode and m.from_version == old_version and m.to_version == new_version
        ),
        None,
    )
    if migration is None:
        return Verdict("blocked", fingerprint, new_fingerprint, followed.step_id, followed.detail)
    moved = follow(new, run, migration.steps, lenient=True)
    if isinstance(moved, Differs):
        return Verdict(
            "blocked",
            fingerprint,
            new_fingerprint,
            moved.step_id,
            f"even through migration {migration.name}: {moved.detail}",
            migration,
        )
    context = moved.context
    if migration.context is not None:
        try:
            transformed = migration.context(context)
        except Exception as exc:
            return Verdict(
                "blocked",
                fingerprint,
                new_fingerprint,
                None,
                f"migration {migration.name} raised on the run's context ({exc})",
                migration,
            )
        expected, got = next_step_id(new, context), next_step_id(new, transformed)
        if got != expected:
            return Verdict(
                "blocked",
                fingerprint,
                new_fingerprint,
                expected or got,
                f"migration {migration.name}'s context would make the run go on at {got!r}, "
                f"not at {expected!r} (a step skipped or run again)",
                migration,
            )
        context = transformed
    return Verdict(
        "migrates",
        fingerprint,
        new_fingerprint,
        migration=migration,
        definition=definition,
        context=context,
        renames=dict(migration.steps),
    )
