"""What ``relance`` prints when a command fails: one line and a non-zero exit, a traceback only with --debug."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
import typer
from temporalio.testing import WorkflowEnvironment

from relance.cli.run import reported, set_debug
from relance.core.errors import Refused
from tests.conftest import free_port
from tests.helpers.cli import relance

HINT = " (run with --debug for the traceback)"


async def test_an_unknown_or_finished_journey_is_one_line(
    dev_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    settings = {
        "RELANCE_DATABASE_URL": sqlite_url,
        "RELANCE_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
    }
    shown = await asyncio.to_thread(relance, "journeys", "show", "journey-nobody", **settings)
    assert (shown.returncode, shown.stdout) == (1, "")
    assert shown.stderr == "error: no journey with id 'journey-nobody'\n"
    cancelled = await asyncio.to_thread(
        relance, "journeys", "cancel", "journey-nobody", "--reason", "test", **settings
    )
    assert (cancelled.returncode, cancelled.stdout) == (1, "")
    assert cancelled.stderr == "error: no running journey with id 'journey-nobody'\n"

    # A journey that has finished: no worker ever ran it, and it was terminated.
    workflow_id = f"journey-{uuid.uuid4().hex[:8]}"
    handle = await dev_env.client.start_workflow(
        "JourneyWorkflow", id=workflow_id, task_queue=f"test-{uuid.uuid4().hex[:8]}"
    )
    await handle.terminate("test")
    finished = await asyncio.to_thread(
        relance, "journeys", "cancel", workflow_id, "--reason", "test", **settings
    )
    assert finished.returncode == 1
    assert finished.stderr == f"error: no running journey with id '{workflow_id}'\n"

    traced = await asyncio.to_thread(relance, "--debug", "journeys", "show", "journey-nobody", **settings)
    assert traced.returncode == 1
    assert traced.stderr.startswith("Traceback (most recent call last):")
    assert "temporalio.service.RPCError" in traced.stderr  # Temporal's answer, then the CLI's wording
    assert traced.stderr.endswith("error: no journey with id 'journey-nobody'\n")


def test_unreachable_temporal_is_one_line(sqlite_url: str) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    result = relance(
        "journeys", "show", "journey-x", RELANCE_DATABASE_URL=sqlite_url, RELANCE_TEMPORAL_ADDRESS=address
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: temporal: cannot reach Temporal at {address} (")
    assert len(result.stderr.splitlines()) == 1


def test_a_refusal_is_one_line(sqlite_url: str) -> None:
    refused = relance("lists", "add", "Nope", "ana", RELANCE_DATABASE_URL=sqlite_url)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == "error: name: no list named 'Nope'\n"


@pytest.mark.parametrize(("root", "env"), [(["--debug"], {}), ([], {"RELANCE_DEBUG": "1"})])
def test_debug_adds_the_traceback(sqlite_url: str, root: list[str], env: dict[str, str]) -> None:
    traced = relance(*root, "lists", "add", "Nope", "ana", RELANCE_DATABASE_URL=sqlite_url, **env)
    assert traced.returncode == 1
    assert traced.stderr.startswith("Traceback (most recent call last):")
    assert "relance.core.errors.Refused: no list named 'Nope'" in traced.stderr
    assert traced.stderr.endswith("error: name: no list named 'Nope'\n")


def test_a_database_without_tables_is_one_line(tmp_path: Path) -> None:
    result = relance("lists", "show", "Lyon", RELANCE_DATABASE_URL=f"sqlite:///{tmp_path}/empty.db")
    assert result.returncode == 1
    assert result.stderr.startswith("error: database: no such table: ")
    assert "relance db upgrade" in result.stderr and len(result.stderr.splitlines()) == 1


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELANCE_DEBUG", raising=False)
    set_debug(False)


def test_an_unexpected_error_is_one_line_that_points_at_debug(
    quiet: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as exited, reported():
        raise ZeroDivisionError("division by zero")
    assert exited.value.exit_code == 1
    assert capsys.readouterr().err == f"error: ZeroDivisionError: division by zero{HINT}\n"

    set_debug(True)
    try:
        with pytest.raises(typer.Exit) as exited, reported():
            raise ZeroDivisionError("division by zero")
    finally:
        set_debug(False)
    shown = capsys.readouterr().err
    assert exited.value.exit_code == 1
    assert shown.startswith("Traceback") and shown.endswith("error: ZeroDivisionError: division by zero\n")


def test_usage_errors_exit_2_and_handled_ones_go_through(
    quiet: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as exited, reported(usage=(Refused,)):
        raise Refused("--at", "give the time zone [e.g. +01:00]")  # brackets are not markup
    assert exited.value.exit_code == 2
    assert capsys.readouterr().err == "error: --at: give the time zone [e.g. +01:00]\n"
    with pytest.raises(Refused), reported(handled=(Refused,)):
        raise Refused("name", "no list named 'Nope'")
    with pytest.raises(typer.Exit) as exited, reported():
        raise typer.Exit(3)  # typer's own exits keep their code
    assert exited.value.exit_code == 3 and capsys.readouterr().err == ""


async def test_commands_that_use_temporal_always_exit_with_their_own_code(
    dev_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    """Short-lived processes with a Temporal client used to abort at exit now and then (134)."""
    settings = {
        "RELANCE_DATABASE_URL": sqlite_url,
        "RELANCE_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
    }
    running = []
    for _ in range(6):
        handle = await dev_env.client.start_workflow(
            "JourneyWorkflow", id=f"journey-{uuid.uuid4().hex[:8]}", task_queue=f"idle-{uuid.uuid4().hex[:8]}"
        )
        running.append(handle.id)
    calls = [("journeys", "cancel", wf_id, "--reason", "test") for wf_id in running]
    calls += [("journeys", "show", f"journey-nobody-{i}") for i in range(6)]
    done = await asyncio.gather(*(asyncio.to_thread(relance, *call, **settings) for call in calls))
    codes = [d.returncode for d in done]
    assert codes == [0] * 6 + [1] * 6, [(d.returncode, d.stderr[-300:]) for d in done]
    assert all("Fatal Python error" not in d.stderr for d in done)


def test_a_short_secret_key_stops_the_api_and_the_worker_with_one_line(sqlite_url: str) -> None:
    for command in ("api", "worker"):
        done = relance(command, RELANCE_DATABASE_URL=sqlite_url, RELANCE_SECRET_KEY="short")
        assert done.returncode == 1, (command, done.stderr)
        assert done.stderr == (
            "error: RELANCE_SECRET_KEY: use at least 16 characters, or leave it unset for a random key "
            "kept locally\n"
        ), command
