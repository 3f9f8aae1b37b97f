"""The vault: original text kept encrypted when a policy anonymizes it at ingest.

AES-256-GCM (the ``cryptography`` package) with a per-project key derived from the master
key (``keys.py``); the generation id is bound in as associated data, so a ciphertext
copied onto another row does not decrypt. Only admins can read the ``vault`` table
(row-level security); ``Project.reveal`` decrypts and writes an audit entry.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from ..errors import ConfigurationError
from .keys import derive, key_id


def _aesgcm(key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def seal(master: bytes, project_id: uuid.UUID, generation_id: uuid.UUID, originals: dict) -> tuple:
    """Encrypt the original fields of a generation: ``(key_id, nonce, ciphertext)``."""
    key = derive(master, "vault", project_id)
    nonce = os.urandom(12)
    plaintext = json.dumps(originals, ensure_ascii=False).encode()
    return key_id(key), nonce, _aesgcm(key).encrypt(nonce, plaintext, generation_id.bytes)


def open_sealed(
    master: bytes,
    project_id: uuid.UUID,
    generation_id: uuid.UUID,
    stored_key_id: str,
    nonce: bytes,
    ciphertext: bytes,
) -> dict:
    """Decrypt what :func:`seal` made; a clear error when the key is not the one used."""
    from cryptography.exceptions import InvalidTag

    key = derive(master, "vault", project_id)
    if key_id(key) != stored_key_id:
        raise ConfigurationError(
            f"the vault entry of {generation_id} was sealed with key {stored_key_id}, but the"
            f" configured key is {key_id(key)}: set PROMPTLAKE_VAULT_KEY to the original key"
        )
    try:
        plaintext = _aesgcm(key).decrypt(bytes(nonce), bytes(ciphertext), generation_id.bytes)
    except InvalidTag:
        raise ConfigurationError(f"the vault entry of {generation_id} is corrupt") from None
    return json.loads(plaintext)
