"""A process that sends random interrupts, resumes and cancels to a worker pool's runs, as a
client (spec/workers.md, WRK-5), until a stop file appears; one line per request and its
outcome goes to `--out`: `kind conversation run ok status` or `kind conversation run error
TypeName` (a typed error); anything else is `untyped` and fails the test that reads it.

    python -m tests.workers.commander --dsn DSN --schema S --runs N --out FILE --stop FILE
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from pathlib import Path
from typing import TextIO

from interruptible._errors import InterruptibleError
from interruptible._journal import PostgresJournal
from interruptible._runtime import Runtime
from tests.workers.app import MODES


async def command(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    journal = PostgresJournal(args.dsn, schema=args.schema)
    stop = Path(args.stop)
    try:
        with Path(args.out).open("a", encoding="utf-8") as out:
            await _send(args, rng, journal, out, stop)
    finally:
        journal.close()


async def _send(
    args: argparse.Namespace, rng: random.Random, journal: PostgresJournal, out: TextIO, stop: Path
) -> None:
    interrupted: list[int] = []  # runs this process interrupted, for its resumes
    active: list[str] = []
    looked = 0.0
    async with Runtime(journal, modes=MODES, role="client") as client:
        while not stop.exists():
            loop_time = asyncio.get_running_loop().time()
            if loop_time - looked > 0.2:  # aim at runs in flight: they are what faults hit
                looked = loop_time
                active = journal.active_conversations()
            kind = rng.choices(("interrupt", "resume", "cancel"), (5, 5, 1))[0]
            if kind == "resume" and interrupted and rng.random() < 0.9:
                n = interrupted.pop(rng.randrange(len(interrupted)))
            elif active and rng.random() < 0.9:
                n = int(rng.choice(active)[1:])
            else:
                n = rng.randrange(args.runs)
            cid, run_id = f"c{n}", f"r{n}"
            try:
                if kind == "interrupt":
                    snapshot = await client.interrupt_run(cid, "chaos", run_id=run_id)
                elif kind == "resume":
                    snapshot = await client.resume_run(cid, run_id)
                else:
                    snapshot = await client.cancel_run(cid, run_id, reason="chaos")
                outcome = f"ok {snapshot.status.value}"
                if snapshot.status.value == "interrupted":
                    interrupted.append(n)
            except InterruptibleError as exc:
                outcome = f"error {type(exc).__name__}"
            except Exception as exc:  # what the test must see
                outcome = f"untyped {type(exc).__name__}: {exc}".replace("\n", " ")
            out.write(f"{kind} {cid} {run_id} {outcome}\n")
            out.flush()
            await asyncio.sleep(rng.uniform(0.0, 2 * args.pause))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--stop", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pause", type=float, default=0.02)
    asyncio.run(command(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
