"""`loyalty jobs`: the worker's periodic jobs, listed and run by hand, under the lock the
scheduled runs take; and the commands' quiet, documented surface."""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta
from pathlib import Path

from api.cli import parser
from domain import clock, db
from domain.program.config import parse
from notifications.worker import _JOB_LOCK, PERIODIC, job_app, run_job
from tests.conftest import BASE, buy, new_member, state
from tests.processes import loyalty_env, run_loyalty

README = Path(__file__).resolve().parents[3] / "README.md"
PROGRAM = BASE.format(earning="", expiry='policy = "rolling"\nmonths = 1', pending=0, welcome=0, cashback="")


async def _cli(tmp_path: Path, database: db.Database, *args: str):
    program = tmp_path / "program.toml"
    program.write_text(PROGRAM)
    env = loyalty_env(LOYALTY_DATABASE_URL=database.dsn(), LOYALTY_PROGRAM=str(program))
    return await asyncio.to_thread(run_loyalty, list(args), tmp_path, env)


async def test_jobs_run_expires_due_points_now(database, tmp_path):
    p = parse(PROGRAM, "program.toml")
    clock.advance(timedelta(days=-40))  # bought 40 days ago: expired 10 days ago
    member = await new_member(p)
    await buy(p, member, "J-1", "25")
    clock.reset()
    assert (await state(member))["balance"] == 25

    ran = await _cli(tmp_path, database, "jobs", "run", "expire_points")

    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "expire_points: released 0 members' pending points, expired 25"
    assert (await state(member))["balance"] == 0
    again = await _cli(tmp_path, database, "jobs", "run", "expire_points")  # as the schedule would, later
    assert again.stdout.strip() == "expire_points: released 0 members' pending points, expired 0"


async def test_jobs_run_refuses_an_unknown_job(database, tmp_path):
    ran = await _cli(tmp_path, database, "jobs", "run", "campaigns")
    assert ran.returncode == 2
    assert "invalid choice: 'campaigns'" in ran.stderr


async def test_a_run_by_hand_waits_for_a_scheduled_run_of_the_same_job(database, tmp_path):
    """The scheduled task and `jobs run` take the same advisory lock: never both at once."""
    p = parse(PROGRAM, "program.toml")
    job = PERIODIC["expire_points"]
    holder = await db.raw_connection(database.credentials)  # a scheduled run in progress
    await holder.execute("SELECT pg_advisory_lock($1, hashtext($2))", _JOB_LOCK, job.name)
    try:
        by_hand = asyncio.create_task(run_job(job, p, database.dsn()))
        await asyncio.sleep(0.5)
        assert not by_hand.done()
        other = asyncio.create_task(run_job(PERIODIC["birthdays"], p, database.dsn()))
        assert (await asyncio.wait_for(other, 10)).endswith("greetings queued")  # another job is not held
    finally:
        await holder.close()
    assert (await asyncio.wait_for(by_hand, 10)).startswith("released")


async def test_jobs_list_and_the_readme_say_when_each_job_runs(database, tmp_path):
    listed = await _cli(tmp_path, database, "jobs", "list")
    assert listed.returncode == 0, listed.stderr
    readme = README.read_text()
    for job in PERIODIC.values():
        assert f"{job.name:<16} {job.when:<20} cron {job.cron}" in listed.stdout
        assert f"| `{job.name}` | {job.when} |" in readme, f"the README does not say when {job.name} runs"


def test_each_periodic_job_is_registered_once(caplog):
    caplog.set_level("INFO", logger="procrastinate.periodic")
    app = job_app("postgresql://nobody@/nowhere")
    registered = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Registering task")]
    assert len(registered) == len(PERIODIC) == len(app.periodic_registry.periodic_tasks)
    assert {t.task.name for t in app.periodic_registry.periodic_tasks.values()} == {f"loyalty:{n}" for n in PERIODIC}


async def test_commands_do_not_narrate_the_orm_shutting_down(database, tmp_path):
    """A command's stderr is for what the user needs: nothing, when all went well."""
    quiet = (["expire"], ["seed", "--demo"], ["token", "--role", "member", "--subject", "ana@example.com"])
    for args in (["migrate"], *quiet):
        ran = await _cli(tmp_path, database, *args)
        assert ran.returncode == 0, (args, ran.stderr)
        assert ran.stderr == ("migrations applied\n" if args == ["migrate"] else ""), (args, ran.stderr)


def _options(p: argparse.ArgumentParser, path: str):
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_option_of_every_command_says_what_it_does():
    missing = [f"{path} {a.dest}" for path, a in _options(parser(), "loyalty") if not (a.help or "").strip()]
    assert missing == []
