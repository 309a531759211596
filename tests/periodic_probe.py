"""A worker process for the periodic-once test: one procrastinate app with a task
due every second, run for a few seconds. Usage: python periodic_probe.py DSN SECONDS NAME"""

import asyncio
import sys

import procrastinate

jobs = procrastinate.Blueprint()


@jobs.periodic(cron="* * * * * *")  # every second (procrastinate's sixth field)
@jobs.task(name="tick", queueing_lock="tick")
async def tick(timestamp: int) -> None:
    pass


async def main(dsn: str, seconds: float, name: str) -> None:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))
    app.add_tasks_from(jobs, namespace="probe")
    async with app.open_async():
        try:
            await asyncio.wait_for(app.run_worker_async(install_signal_handlers=False, name=name), seconds)
        except TimeoutError:
            pass


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), sys.argv[3]))
