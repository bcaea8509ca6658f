"""AES-256-GCM at rest: round trip, fresh nonces, and every kind of tampering detected."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from api.security import crypto
from core.settings import Settings

AAD = b"kyc_records:1:legal_name"


@pytest.fixture
def settings() -> Settings:
    return Settings(encryption_secret=SecretStr("unit-test-secret-" + "x" * 20))


def test_sealed_data_opens_to_the_plaintext(settings: Settings) -> None:
    ring = crypto.keyring(settings, crypto.PURPOSE_KYC)

    sealed = crypto.seal(ring, b"Priya Raman", AAD)

    assert b"Priya" not in sealed.ciphertext
    assert len(sealed.nonce) == crypto.NONCE_BYTES
    assert crypto.unseal(ring, sealed, AAD) == b"Priya Raman"


def test_each_encryption_draws_a_new_nonce(settings: Settings) -> None:
    ring = crypto.keyring(settings, crypto.PURPOSE_KYC)

    first, second = crypto.seal(ring, b"same", AAD), crypto.seal(ring, b"same", AAD)

    assert first.nonce != second.nonce
    assert first.ciphertext != second.ciphertext


def _flip_first_bit(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: crypto.Sealed(_flip_first_bit(s.ciphertext), s.nonce, s.key_id),
        lambda s: crypto.Sealed(s.ciphertext[:-1], s.nonce, s.key_id),
        lambda s: crypto.Sealed(s.ciphertext, _flip_first_bit(s.nonce), s.key_id),
        lambda s: crypto.Sealed(s.ciphertext, s.nonce, "unknown-key"),
    ],
    ids=["ciphertext", "truncated", "nonce", "key-id"],
)
def test_tampering_is_detected(settings: Settings, tamper: object) -> None:
    ring = crypto.keyring(settings, crypto.PURPOSE_KYC)
    sealed = crypto.seal(ring, b"Priya Raman", AAD)
    assert callable(tamper)

    with pytest.raises(crypto.DecryptionError):
        crypto.unseal(ring, tamper(sealed), AAD)


def test_a_ciphertext_moved_to_another_row_or_field_does_not_open(settings: Settings) -> None:
    ring = crypto.keyring(settings, crypto.PURPOSE_KYC)
    sealed = crypto.seal(ring, b"Priya Raman", AAD)

    with pytest.raises(crypto.DecryptionError):
        crypto.unseal(ring, sealed, b"kyc_records:2:legal_name")
    with pytest.raises(crypto.DecryptionError):
        crypto.unseal(ring, sealed, b"kyc_records:1:address")


def test_each_purpose_has_its_own_key(settings: Settings) -> None:
    kyc = crypto.keyring(settings, crypto.PURPOSE_KYC)
    totp = crypto.keyring(settings, crypto.PURPOSE_TOTP)
    sealed = crypto.seal(kyc, b"secret", AAD)

    assert kyc.keys[kyc.current_id] != totp.keys[totp.current_id]
    with pytest.raises(crypto.DecryptionError):
        crypto.unseal(totp, sealed, AAD)


def test_a_retired_secret_still_opens_old_rows_after_rotation(settings: Settings) -> None:
    old_ring = crypto.keyring(settings, crypto.PURPOSE_KYC)
    old = crypto.seal(old_ring, b"before rotation", AAD)
    rotated = settings.model_copy(
        update={
            "encryption_secret": SecretStr("unit-test-new-secret-" + "y" * 20),
            "encryption_secrets_retired": (settings.encryption_secret,),
        }
    )
    new_ring = crypto.keyring(rotated, crypto.PURPOSE_KYC)

    new = crypto.seal(new_ring, b"after rotation", AAD)

    assert new.key_id != old.key_id
    assert crypto.unseal(new_ring, old, AAD) == b"before rotation"
    assert crypto.unseal(new_ring, new, AAD) == b"after rotation"
    with pytest.raises(crypto.DecryptionError):
        crypto.unseal(old_ring, new, AAD)
