"""The typed activity stubs workflows call match the activities the worker registers.

Workflows call stubs declared beside the payloads (``relance/models/<capability>.py``); the
worker registers the real implementations under the same names. A stub whose name, parameter
or result drifts from its implementation would send or decode the wrong payload: caught here,
without a server.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity

import relance.models
import relance.worker
from relance.core.settings import Settings

# Every payload module (models/*.py; the tables are a package of their own).
STUB_MODULES = [
    importlib.import_module(f"relance.models.{info.name}")
    for info in pkgutil.iter_modules(relance.models.__path__)
    if not info.ispkg
]


def _name(fn: Callable[..., Any]) -> str:
    defn = activity._Definition.from_callable(fn)
    assert defn is not None and defn.name, f"{fn!r} is not a named activity"
    return defn.name


def _shape(fn: Callable[..., Any]) -> tuple[list[Any], Any]:
    """Parameter and return annotations, resolved (modules use ``from __future__ import annotations``)."""
    signature = inspect.signature(fn, eval_str=True)  # a bound method drops ``self``
    return [p.annotation for p in signature.parameters.values()], signature.return_annotation


def _stubs() -> dict[str, Callable[..., Any]]:
    stubs: dict[str, Callable[..., Any]] = {}
    for module in STUB_MODULES:
        for value in vars(module).values():
            if isinstance(value, types.FunctionType) and activity._Definition.from_callable(value):
                assert value.__module__ == module.__name__, f"{value.__qualname__} is re-exported"
                stubs[_name(value)] = value
    return stubs


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Callable[..., Any]]:
    """The activities ``build_worker`` hands to the Temporal worker, by name, without starting it."""
    captured: dict[str, Any] = {}

    def fake_worker(client: object, **options: Any) -> object:
        captured.update(options)
        return object()

    patch = pytest.MonkeyPatch()
    patch.setattr(relance.worker, "Worker", fake_worker)
    try:
        settings = Settings(secret_key="activity-contract-test", data_dir=tmp_path_factory.mktemp("data"))
        unused: Any = None  # neither client, database nor channel is touched until an activity runs
        relance.worker.build_worker(
            client=unused, settings=settings, sessions=unused, channel=unused, scenarios=lambda: unused
        )
    finally:
        patch.undo()
    return {_name(fn): fn for fn in captured["activities"]}


def test_stubs_are_found() -> None:
    stubs = _stubs()
    assert "deliver_message" in stubs and "send_batch" in stubs, sorted(stubs)


@pytest.mark.parametrize("name", sorted(_stubs()))
def test_each_stub_has_its_implementation(name: str, registered: dict[str, Callable[..., Any]]) -> None:
    stub = _stubs()[name]
    where = f"{stub.__module__}.{stub.__qualname__}"
    assert name in registered, (
        f"{where} calls activity '{name}', which relance/worker.py does not register: "
        f"register its implementation, or fix the stub's name (registered: {sorted(registered)})"
    )
    real = registered[name]
    assert _shape(stub) == _shape(real), (
        f"{where} (parameters, result) {_shape(stub)} differ from {real.__qualname__} "
        f"{_shape(real)}: make the stub's annotations those of the implementation"
    )


def test_every_registered_activity_has_a_stub(registered: dict[str, Callable[..., Any]]) -> None:
    missing = sorted(set(registered) - set(_stubs()))
    assert not missing, (
        f"activities {missing} have no stub: declare one beside their payloads in "
        "relance/models/<capability>.py, so workflows call it by function"
    )


def test_workflows_call_activities_by_stub_only() -> None:
    """No activity name string, no result_type: the stub carries both."""
    calls = {"execute_activity", "start_activity"}
    for path in sorted((Path(relance.worker.__file__).parent / "workflows").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called not in calls:
                continue
            where = f"{path}:{node.lineno}"
            first = node.args[0] if node.args else None
            assert not (isinstance(first, ast.Constant) and isinstance(first.value, str)), (
                f"{where}: calls activity {first.value!r} by name: pass its stub from relance.models"
            )
            assert all(k.arg != "result_type" for k in node.keywords), (
                f"{where}: result_type is the stub's return annotation: drop it"
            )
