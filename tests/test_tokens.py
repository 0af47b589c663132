"""Property tests of the link signer: what it signs it reads back; nothing else passes (D-03)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relance.core.tokens import Signer, TokenError

SIGNER = Signer("property-test-secret-key", unsubscribe_max_age_seconds=3600)
contacts = st.text(min_size=1, max_size=200)
TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


@pytest.mark.feature("D-03")
@given(contact=contacts, purpose=st.sampled_from(["marketing", "transactional", "legal"]))
def test_a_signed_token_reads_back_exactly(contact: str, purpose: str) -> None:
    read = SIGNER.read_unsubscribe(SIGNER.unsubscribe_token(contact, purpose))
    assert (read.contact, read.purpose) == (contact, purpose)


@pytest.mark.feature("D-03")
@settings(max_examples=300)
@given(contact=contacts, data=st.data())
def test_any_change_to_a_token_is_refused(contact: str, data: st.DataObject) -> None:
    token = SIGNER.unsubscribe_token(contact)
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from(TOKEN_ALPHABET).filter(lambda c: c != token[index]))
    tampered = token[:index] + replacement + token[index + 1 :]
    try:
        read = SIGNER.read_unsubscribe(tampered)
    except TokenError:
        return
    # base64 padding bits can absorb a change without altering the decoded bytes
    assert read.contact == contact


@pytest.mark.feature("D-03")
@given(contact=contacts)
def test_a_token_from_another_secret_is_refused(contact: str) -> None:
    other = Signer("a-different-secret-key", unsubscribe_max_age_seconds=3600)
    with pytest.raises(TokenError):
        SIGNER.read_unsubscribe(other.unsubscribe_token(contact))


@given(garbage=st.text(max_size=300))
def test_garbage_is_refused_not_crashed(garbage: str) -> None:
    with pytest.raises(TokenError):
        SIGNER.read_unsubscribe(garbage)
