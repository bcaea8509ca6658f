"""Encryption at rest: AES-256-GCM with keys derived from ``settings.encryption_secret``.

Each purpose (TOTP secrets, KYC PII) gets its own key, derived with HKDF-SHA256 and the purpose as
label, so a key leaked for one use does not open the other. Every encryption draws a fresh
96-bit nonce. The associated data binds a ciphertext to its row and field: a ciphertext copied
into another user's row or another column fails authentication instead of decrypting.

Rotation: a key is named by ``key_id`` (a fingerprint of its secret, stored beside the
ciphertext). A new ``encryption_secret`` encrypts new rows; the old one, moved to
``encryption_secrets_retired``, still decrypts old rows until they are re-encrypted.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.exceptions import BrokerError
from core.settings import Settings

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the GCM standard nonce; the schema checks it
KEY_ID_CHARS = 16
HKDF_LABEL = b"broker/aes-256-gcm/"

PURPOSE_TOTP = "totp-secret"
PURPOSE_KYC = "kyc-pii"


class DecryptionError(BrokerError):
    """A ciphertext cannot be opened: its key is not configured, or it was altered.

    An unknown key id means the secret that wrote the row is neither ``BROKER_ENCRYPTION_SECRET``
    nor in ``BROKER_ENCRYPTION_SECRETS_RETIRED``; a failed tag means the row was tampered with
    or moved to another row or field.
    """


@dataclass(frozen=True, slots=True)
class Sealed:
    """A ciphertext (with its GCM tag), the nonce it was made with and the key's id."""

    ciphertext: bytes
    nonce: bytes
    key_id: str


@dataclass(frozen=True, slots=True)
class Keyring:
    """The keys of one purpose: the current one encrypts, any of them decrypts."""

    current_id: str
    keys: dict[str, bytes]


def key_id_of(secret: str) -> str:
    """A public fingerprint naming the key derived from a secret (reveals nothing about it)."""
    return hashlib.sha256(b"broker/key-id/" + secret.encode()).hexdigest()[:KEY_ID_CHARS]


def derive_key(secret: str, purpose: str) -> bytes:
    """The 256-bit key of one purpose, derived from a secret with HKDF-SHA256."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=None,
        info=HKDF_LABEL + purpose.encode(),
    )
    return hkdf.derive(secret.encode())


def keyring(settings: Settings, purpose: str) -> Keyring:
    """The keyring of a purpose: the current secret plus the retired ones."""
    current = settings.encryption_secret.get_secret_value()
    secrets = [current] + [s.get_secret_value() for s in settings.encryption_secrets_retired]
    return Keyring(
        current_id=key_id_of(current),
        keys={key_id_of(s): derive_key(s, purpose) for s in secrets},
    )


def seal(ring: Keyring, plaintext: bytes, associated_data: bytes) -> Sealed:
    """Encrypt with the current key and a fresh random nonce."""
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(ring.keys[ring.current_id]).encrypt(nonce, plaintext, associated_data)
    return Sealed(ciphertext=ciphertext, nonce=nonce, key_id=ring.current_id)


def unseal(ring: Keyring, sealed: Sealed, associated_data: bytes) -> bytes:
    """Decrypt and authenticate; DecryptionError when the key is unknown or the data altered."""
    key = ring.keys.get(sealed.key_id)
    if key is None:
        raise DecryptionError(f"no configured key has id {sealed.key_id!r}")
    if len(sealed.nonce) != NONCE_BYTES:
        raise DecryptionError(f"nonce is {len(sealed.nonce)} bytes, not {NONCE_BYTES}")
    try:
        return AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, associated_data)
    except InvalidTag:
        raise DecryptionError("ciphertext failed authentication (altered or moved)") from None
