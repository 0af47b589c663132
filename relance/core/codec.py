"""Encryption of everything relance puts in Temporal histories (O-07).

Workflow inputs, signals, activity arguments and results carry contacts'
addresses and names; with ``RELANCE_PAYLOAD_KEYS`` set, every payload is
sealed with AES-256-GCM before it leaves the process, so the Temporal server
(its database, its backups, its UI) only ever stores ciphertext. Failure
messages and stack traces are encoded too (they may quote an address).

Keys are ``id:base64`` pairs; the first encrypts, all of them decrypt, so a
key is rotated by putting a new one first and keeping the old one until the
histories it sealed are gone. ``relance keys new`` prints a fresh pair. The
codec server (``/codec/decode``) lets the Temporal UI show operators the
plaintext: start the UI with ``--ui-codec-endpoint <api>/codec``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
_NONCE = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class CodecError(ValueError):
    """A key that cannot be used, or a payload that cannot be opened; the message says which."""


@dataclasses.dataclass(frozen=True)
class PayloadKey:
    id: str
    secret: bytes


def parse_keys(text: str) -> list[PayloadKey]:
    """``RELANCE_PAYLOAD_KEYS``: ``id:base64`` pairs, comma-separated, the first one current."""
    keys: list[PayloadKey] = []
    for number, item in enumerate((part.strip() for part in text.split(",") if part.strip()), start=1):
        key_id, sep, encoded = item.partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise CodecError(
                f"RELANCE_PAYLOAD_KEYS, key {number}: write it as <id>:<base64 of 32 bytes>, "
                "e.g. the output of `relance keys new`"
            )
        try:
            secret = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise CodecError(
                f"RELANCE_PAYLOAD_KEYS, key '{key_id}': the part after ':' is not base64"
            ) from None
        if len(secret) != 32:
            raise CodecError(
                f"RELANCE_PAYLOAD_KEYS, key '{key_id}': {len(secret)} bytes; "
                "AES-256 needs 32 (`relance keys new`)"
            )
        if any(k.id == key_id for k in keys):
            raise CodecError(f"RELANCE_PAYLOAD_KEYS: the key id '{key_id}' is given twice")
        keys.append(PayloadKey(key_id, secret))
    return keys


def new_key(key_id: str) -> str:
    if not _KEY_ID.match(key_id):
        raise CodecError(f"'{key_id}' is not a key id: letters, digits, '_', '.', '-' (at most 64)")
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Sequence[PayloadKey]) -> None:
        if not keys:
            raise CodecError("RELANCE_PAYLOAD_KEYS: no key given")
        self._current = keys[0]
        self._ciphers = {key.id: AESGCM(key.secret) for key in keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._seal(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._open(p) for p in payloads]

    def _seal(self, payload: Payload) -> Payload:
        nonce = os.urandom(_NONCE)  # random per payload: never reused with a key
        sealed = self._ciphers[self._current.id].encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: self._current.id.encode()}, data=nonce + sealed
        )

    def _open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption was turned on: readable as it is
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecError(
                f"a payload was sealed with the key '{key_id}', which RELANCE_PAYLOAD_KEYS no longer holds"
            )
        try:
            return Payload.FromString(cipher.decrypt(payload.data[:_NONCE], payload.data[_NONCE:], None))
        except InvalidTag:
            raise CodecError(
                f"a payload sealed with the key '{key_id}' was altered, or the key changed"
            ) from None


def data_converter(base: DataConverter, keys: Iterable[PayloadKey]) -> DataConverter:
    """``base`` with every payload and failure message encrypted."""
    return dataclasses.replace(
        base,
        payload_codec=EncryptionCodec(list(keys)),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
