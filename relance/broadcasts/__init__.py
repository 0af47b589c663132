"""Bulk sends to a list or a segment: scheduling, reschedule, cancel, test sends."""
