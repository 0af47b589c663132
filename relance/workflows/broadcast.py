"""BroadcastWorkflow: one bulk send to a list or segment (B-01 … B-06).

It reads like the marketer's screen: after "send", wait the safety delay (or
until the scheduled time) during which the send can be rescheduled or
cancelled; then take a snapshot of the audience, send in paced batches, and
report what happened. Never one workflow per recipient: the recipients are
rows, the batches activities, and the delivery ledger makes every message
go at most once, even when a worker dies mid-batch.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from relance.models.broadcast import (
        BatchRequest,
        BatchResult,
        BroadcastInput,
        BroadcastReport,
        BroadcastState,
        Reschedule,
        Resume,
        finish_broadcast,
        send_batch,
        set_broadcast_status,
        snapshot_audience,
    )
    from relance.workflows.common import (
        BATCH_HEARTBEAT_TIMEOUT,
        BATCH_RETRY,
        BULK_BOOKKEEPING_TIMEOUT,
        batch_timeout,
        wait_until,
    )

CONTINUE_AS_NEW = "broadcast-continue-as-new"  # workflow.patched id: runs started before it never continue


@workflow.defn
class BroadcastWorkflow:
    @workflow.init
    def __init__(self, input: BroadcastInput) -> None:
        self._id = input.broadcast_id
        self._send_at = input.send_at
        self._status = "scheduled"
        self._recipients: int | None = None
        self._processed = 0
        self._report: BroadcastReport | None = None

    # --- the marketer's controls, until messages are generated -----------------

    @workflow.update
    def reschedule(self, change: Reschedule) -> BroadcastState:
        self._send_at = change.at
        return self.state()

    @reschedule.validator
    def _may_reschedule(self, change: Reschedule) -> None:
        self._still_scheduled("reschedule")
        if change.at <= workflow.now():
            raise ValueError(f"{change.at.isoformat()} is in the past: pick a later time")

    @workflow.update
    def cancel(self) -> BroadcastState:
        self._status = "cancelled"
        return self.state()

    @cancel.validator
    def _may_cancel(self) -> None:
        self._still_scheduled("cancel")

    def _still_scheduled(self, what: str) -> None:
        if self._status != "scheduled":
            raise ValueError(f"the send is {self._status}: too late to {what} it")

    @workflow.query
    def state(self) -> BroadcastState:
        return BroadcastState(
            broadcast_id=self._id,
            status=self._status,
            send_at=self._send_at,
            recipients=self._recipients,
            processed=self._processed,
            report=self._report,
        )

    # --- the send --------------------------------------------------------------------

    @workflow.run
    async def run(self, input: BroadcastInput) -> BroadcastState:
        resume = input.resume
        if resume is None:
            await self._wait_for_send_time()
            if self._status == "cancelled":
                await self._record_status("cancelled")
                return self.state()
            self._status = "sending"
            self._recipients = await workflow.execute_activity(
                snapshot_audience, self._id, start_to_close_timeout=BULK_BOOKKEEPING_TIMEOUT
            )
            next_retry = await self._send_all(input, deferred=False)
        else:  # a continued run: the snapshot is taken, the batches go on from where they were
            self._status, self._recipients, self._processed = "sending", resume.recipients, resume.processed
            next_retry = await self._send_all(input, deferred=resume.deferred, after_seq=resume.after_seq)
        # SMS that met the night wait for the contact's morning, then go in a pass of their own.
        while next_retry is not None:
            await workflow.sleep(max(timedelta(0), next_retry - workflow.now()))
            next_retry = await self._send_all(input, deferred=True)
        self._report = await workflow.execute_activity(
            finish_broadcast, self._id, start_to_close_timeout=BULK_BOOKKEEPING_TIMEOUT
        )
        self._status = "completed"
        return self.state()

    async def _send_all(self, input: BroadcastInput, deferred: bool, after_seq: int = 0) -> datetime | None:
        """Batches in order until the end; returns when deferred recipients may go next."""
        last_seq, batches = after_seq, 0
        while True:
            if self._history_full(batches, input) and workflow.patched(CONTINUE_AS_NEW):
                # Millions of recipients are thousands of batches: carry on in a fresh history.
                resume = Resume(
                    recipients=self._recipients,
                    processed=self._processed,
                    after_seq=last_seq,
                    deferred=deferred,
                )
                workflow.continue_as_new(
                    input.model_copy(update={"resume": resume, "send_at": self._send_at})
                )
            batch: BatchResult = await workflow.execute_activity(
                send_batch,
                BatchRequest(
                    broadcast_id=self._id,
                    after_seq=last_seq,
                    batch_size=input.batch_size,
                    rate_per_second=input.rate_per_second,
                    at=workflow.now(),
                    deferred=deferred,
                ),
                # Paced sends take time; heartbeats tell a dead worker from a slow batch.
                start_to_close_timeout=batch_timeout(input.batch_size, input.rate_per_second),
                heartbeat_timeout=BATCH_HEARTBEAT_TIMEOUT,
                retry_policy=BATCH_RETRY,
            )
            self._processed += batch.processed
            last_seq, batches = batch.last_seq, batches + 1
            if batch.done:
                return batch.next_retry

    @staticmethod
    def _history_full(batches: int, input: BroadcastInput) -> bool:
        return batches >= input.batches_per_run or workflow.info().is_continue_as_new_suggested()

    async def _wait_for_send_time(self) -> None:
        """Sleep until the send time; a reschedule moves the alarm, a cancel ends the wait."""
        while self._status == "scheduled":
            send_at: datetime = self._send_at

            def moved_or_cancelled(at: datetime = send_at) -> bool:
                return self._status != "scheduled" or self._send_at != at

            if not await wait_until(send_at, unless=moved_or_cancelled):
                return

    async def _record_status(self, status: str) -> None:
        await workflow.execute_activity(
            set_broadcast_status, [self._id, status], start_to_close_timeout=BULK_BOOKKEEPING_TIMEOUT
        )
