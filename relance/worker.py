"""Builds the Temporal worker running journeys and their activities."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from relance.activities.bounce import BounceActivities
from relance.activities.broadcast import BroadcastActivities
from relance.activities.delivery import DeliveryActivities
from relance.activities.gift_card import GiftCardActivities
from relance.activities.journey import JourneyActivities
from relance.activities.promo_code import RewardActivities
from relance.activities.referral import ReferralActivities
from relance.channels.base import ChannelProvider
from relance.core.settings import Settings
from relance.delivery.pressure import PressurePolicy
from relance.gift_cards.provider import LocalGiftCardProvider
from relance.scenarios.loader import ScenarioSet
from relance.scenarios.registry import scenario_registry
from relance.templates.engine import TemplateStore
from relance.workflows.bounce import SoftBounceWorkflow
from relance.workflows.broadcast import BroadcastWorkflow
from relance.workflows.gift_card import GiftCardWorkflow
from relance.workflows.journey import JourneyWorkflow
from relance.workflows.referral import ReferralWorkflow
from relance.workflows.referral_thanks import ReferralThanksWorkflow

WORKFLOWS = [
    JourneyWorkflow,
    SoftBounceWorkflow,
    BroadcastWorkflow,
    GiftCardWorkflow,
    ReferralWorkflow,
    ReferralThanksWorkflow,
]


def build_worker(
    client: Client,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    channel: ChannelProvider,
    templates: TemplateStore | None = None,
    scenarios: Callable[[], ScenarioSet] | None = None,
) -> Worker:
    delivery = DeliveryActivities(
        sessions=sessions,
        templates=templates or TemplateStore(settings.templates_dir),
        channel=channel,
        sender=settings.email_from,
        scenarios=scenarios if scenarios is not None else scenario_registry(settings.scenarios_dir),
        signer=settings.signer(),
        public_url=settings.public_url,
        default_time_zone=settings.default_time_zone,
        tracking=settings.tracking,
        pressure_policy=PressurePolicy(settings.pressure_max_per_day, settings.pressure_arbitration_seconds),
    )
    journeys = JourneyActivities(sessions)
    bounces = BounceActivities(delivery)
    bulk = BroadcastActivities(sessions=sessions, delivery=delivery)
    referrals = ReferralActivities(sessions)
    rewards = RewardActivities(sessions=sessions, secret=settings.resolved_secret_key())
    cards = GiftCardActivities(
        sessions=sessions, provider=LocalGiftCardProvider(settings.resolved_secret_key(), settings.public_url)
    )
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=[
            delivery.deliver,
            delivery.deliver_program,
            delivery.skip,
            journeys.end_journey,
            bounces.resend,
            bounces.end_soft_bounces,
            bulk.snapshot,
            bulk.send_batch,
            bulk.finish,
            bulk.set_status,
            cards.issue,
            cards.record_balance,
            cards.expire,
            referrals.record_status,
            referrals.card_balance,
            referrals.promo_code_used,
            rewards.assign_promo_code,
        ],
        max_concurrent_activities=100,
    )
