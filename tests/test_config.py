"""Settings: sandbox defaults, the single connection, and clear errors for malformed values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import LOCAL_URL, Settings
from app.main import sandbox_config
from app.sandbox import keys


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_no_credentials_means_sandbox_mode_with_working_defaults() -> None:
    config = settings(public_url="http://127.0.0.1:9000")
    assert config.sandbox_mode
    assert config.ghl_base_url == "http://127.0.0.1:9000/sandbox/ghl"
    assert config.rankr_base_url == "http://127.0.0.1:9000/sandbox/rankr"
    assert config.ghl_token == keys.GHL_PRIVATE_TOKEN
    assert len(config.rankr_secrets) == 1
    seed = config.connection_seed
    assert seed is not None
    assert (seed.rankr_account_id, seed.ghl_location_id) == (keys.RANKR_ACCOUNT_ID, keys.GHL_LOCATION_ID)


def test_production_settings_describe_one_connection() -> None:
    config = settings(
        ghl_private_token="pit-123",
        ghl_location_id="loc1",
        rankr_account_id="acct1",
        rankr_client_id="cid",
        rankr_client_secret="csecret",
        rankr_api_base_url="https://api.rankr.example/v1/",
    )
    assert not config.sandbox_mode
    assert config.ghl_base_url == "https://services.leadconnectorhq.com"
    assert config.rankr_base_url == "https://api.rankr.example/v1"
    assert config.rankr_secrets == ()  # unconfigured: Rankr webhooks will be refused
    assert config.connection_seed is not None


def test_secrets_never_show_in_the_settings_repr() -> None:
    config = settings(ghl_private_token="pit-very-secret", rankr_client_secret="also-secret")
    assert "pit-very-secret" not in repr(config)
    assert "also-secret" not in repr(config)


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"rankr_webhook_secrets": "whsec_%%%"}, "RANKR_WEBHOOK_SECRETS"),
        ({"retry_schedule": "5,soon"}, "RETRY_SCHEDULE"),
        ({"retry_schedule": "0"}, "RETRY_SCHEDULE"),
        ({"custom_field_map": "industry"}, "CUSTOM_FIELD_MAP"),
        ({"user_map": "a=b,=c"}, "USER_MAP"),
        ({"database_url": "mysql://x"}, "DATABASE_URL"),
        ({"log_level": "LOUD"}, "LOG_LEVEL"),
        (
            {"ghl_webhook_public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"},
            "GHL_WEBHOOK",
        ),
        ({"contact_delete_mode": "shred"}, "contact_delete_mode"),
    ],
)
def test_malformed_settings_fail_naming_themselves(values: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        settings(**values)


def test_custom_field_and_user_maps() -> None:
    config = settings(custom_field_map="industry=cf1, score = cf2", user_map="usr_1=ghlU1")
    assert config.env_custom_fields == {"industry": "cf1", "score": "cf2"}
    assert config.env_users == {"usr_1": "ghlU1"}


@pytest.mark.parametrize(
    "value",
    ["sync.example.com", "ftp://sync.example.com", "https://", "/webhooks", "https://u:p@sync.example.com",
     "https://sync.example.com/?a=1", "https://sync.example.com/#top"],
)  # fmt: skip
def test_a_public_url_that_is_not_an_absolute_http_base_url_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="PUBLIC_URL must be"):
        settings(public_url=value)


def test_every_url_of_the_service_is_built_on_one_base() -> None:
    unset = settings()
    assert (unset.public_url, unset.public_base_url) == (None, LOCAL_URL)
    assert settings(public_url="").public_url is None  # an empty line in .env is not set
    config = settings(public_url=" https://sync.example.com/crm/ ")
    assert config.public_base_url == "https://sync.example.com/crm"
    assert config.ghl_oauth_redirect_uri == "https://sync.example.com/crm/oauth/ghl/callback"
    assert config.ghl_base_url == "https://sync.example.com/crm/sandbox/ghl"  # sandbox mode
    assert config.ghl_chooser_url == "https://sync.example.com/crm/sandbox/ghl/oauth/chooselocation"
    assert sandbox_config(config).webhook_target == "https://sync.example.com/crm"
