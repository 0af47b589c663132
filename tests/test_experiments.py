"""A/B variants and holdout groups of a message, and their analysis (A-04)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from relance.models.journey import Anchor, Channel, StepSpec, VariantSpec
from relance.models.tables.delivery import Delivery
from relance.reports.experiments import HOLDOUT, GroupResult, _compare, variant_of
from relance.simulation.run import time_skipping
from tests.conftest import api_client, purchase, running_stack

AB = """\
scenario: shop
journeys:
  - id: thanks
    name: Thank-you with a spring offer
    trigger: {event: purchase, ref: order_id}
    messages:
      - id: offer
        template: news/plain
        delay: 1 hour
        variants:
          - {id: b, template: news/bold}
        holdout: 20
"""


def step(holdout: int = 20, weights: tuple[int, int] = (1, 1)) -> StepSpec:
    return StepSpec(
        id="offer", channel=Channel.EMAIL, template="news/plain", delay_seconds=0, after=Anchor.TRIGGER,
        variants=[VariantSpec(id="a", template="news/plain", weight=weights[0]),
                  VariantSpec(id="b", template="news/bold", weight=weights[1])],
        holdout_percent=holdout,
    )  # fmt: skip


@pytest.mark.feature("A-04")
def test_groups_are_stable_and_follow_the_shares() -> None:
    groups = Counter(variant_of("shop", "thanks", step(), f"c-{n}") for n in range(20_000))
    assert abs(groups[HOLDOUT] / 20_000 - 0.20) < 0.015
    assert abs(groups["a"] / 20_000 - 0.40) < 0.015 and abs(groups["b"] / 20_000 - 0.40) < 0.015
    assert all(variant_of("shop", "thanks", step(), f"c-{n}") == variant_of("shop", "thanks", step(), f"c-{n}")
               for n in range(100))  # fmt: skip
    weighted = Counter(variant_of("shop", "thanks", step(0, (1, 3)), f"c-{n}") for n in range(20_000))
    assert abs(weighted["b"] / 20_000 - 0.75) < 0.015 and HOLDOUT not in weighted
    plain = StepSpec(id="m", channel=Channel.EMAIL, template="t", delay_seconds=0, after=Anchor.TRIGGER)
    assert variant_of("shop", "thanks", plain, "c-1") is None  # no test, no group


def test_the_z_test_against_the_control() -> None:
    variant = GroupResult(group="b", contacts=1000, sent=1000, clicked=0, converted=150, conversion_rate=0.15)
    control = GroupResult(
        group="holdout", contacts=1000, sent=0, clicked=0, converted=100, conversion_rate=0.1
    )
    _compare(variant, control)
    assert variant.lift == pytest.approx(0.5)
    assert variant.p_value == pytest.approx(0.000723, abs=0.00002)  # z = 3.38
    assert variant.significant
    small = GroupResult(group="b", contacts=20, sent=20, clicked=0, converted=10, conversion_rate=0.5)
    _compare(small, GroupResult(group="a", contacts=20, sent=20, clicked=0, converted=2, conversion_rate=0.1))
    assert small.p_value is not None and small.p_value < 0.05 and not small.significant  # too few contacts


@pytest.mark.feature("A-04")
async def test_variants_are_sent_the_holdout_gets_nothing_and_the_report_compares(
    time_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "shop.yaml").write_text(AB)
    news = tmp_path / "templates" / "news"
    news.mkdir(parents=True)
    for name, subject in (("plain", "Spring offer"), ("bold", "SPRING: 20% OFF")):
        (news / f"{name}.subject.j2").write_text(subject)
        (news / f"{name}.txt.j2").write_text("Our offer. Unsubscribe: {{ links.unsubscribe }}")
    async with (
        running_stack(time_env.client, sqlite_url, scenarios_dir=tmp_path / "scenarios",
                      templates_dir=tmp_path / "templates", pressure_max_per_day=0) as stack,
        api_client(stack) as http,
    ):  # fmt: skip
        t0 = await time_env.get_current_time()
        people = [f"p{n:02d}" for n in range(40)]
        runs = []
        for who in people:
            runs += (await stack.relance.send_event(purchase(t0, order=f"{who}-1", contact=who))).journeys
        async with time_skipping(stack.client):
            for run in runs:
                await stack.client.get_workflow_handle(run.workflow_id).result()
        # Some come back and buy within the week: every contact of group b, nobody else.
        group = {who: variant_of("shop", "thanks", step(), who) for who in people}
        later = t0 + timedelta(days=2)
        for who in people:
            if group[who] == "b":
                await stack.relance.send_event(purchase(later, order=f"{who}-2", contact=who))
        async with stack.sessions() as session:
            rows = {
                r.contact_external_id: r
                for r in await session.scalars(select(Delivery).where(Delivery.at < later))
            }
        report = (await http.get("/v1/experiments/shop/thanks/offer")).json()

    assert {who: rows[who].variant for who in people} == group
    assert {rows[w].status for w in people if group[w] == HOLDOUT} == {"skipped"}
    assert all("control group" in (rows[w].reason or "") for w in people if group[w] == HOLDOUT)
    subjects = {m.to.split("@")[0]: m.subject for m in stack.channel.messages}  # type: ignore[attr-defined]
    for who in people:
        expected = {"a": "Spring offer", "b": "SPRING: 20% OFF", HOLDOUT: None}[group[who]]
        assert subjects.get(who) == expected, who
    counts = Counter(group.values())
    by_group = {g["group"]: g for g in report["groups"]}
    assert report["control"] == "holdout" and report["groups"][0]["group"] == "holdout"
    assert {g: by_group[g]["contacts"] for g in by_group} == dict(counts)
    assert by_group["b"]["converted"] == counts["b"] and by_group["a"]["converted"] == 0
    assert by_group[HOLDOUT]["sent"] == 0 and by_group["b"]["sent"] == counts["b"]
    assert by_group["b"]["p_value"] is not None and by_group["b"]["p_value"] < 0.01

    env = {**os.environ, "RELANCE_DATABASE_URL": sqlite_url, "RELANCE_LOG_LEVEL": "warning"}
    shown = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "relance.cli", "experiments", "show", "shop", "thanks", "offer", "--json"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["groups"] == report["groups"]
    none = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "relance.cli", "experiments", "show", "shop", "thanks", "nope"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert none.returncode == 1 and "no A/B group recorded for shop/thanks/nope" in none.stderr
