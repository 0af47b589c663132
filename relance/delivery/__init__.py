"""The send policy every sender goes through: decide, render, ledger, channel.

``message.py`` (what is to be sent), ``policy.py`` (whether it goes now, waits or
never goes), ``variants.py``, ``sms_hours.py`` and ``pressure.py`` (its rules),
``render.py`` and ``tracking.py`` (the message as it goes out), ``ledger.py``
(the exactly-once claim and the record), ``send.py`` (the provider's answer).
"""
