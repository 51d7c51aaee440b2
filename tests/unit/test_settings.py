"""Settings come from the environment once, with defaults, and bad values are named."""

import pytest

from chalicelib.settings import Settings, SettingsError


def test_defaults():
    s = Settings.from_env({})
    assert (s.lainlet_url, s.backupd_port, s.backupd_api_prefix, s.node_timeout_seconds,
            s.fanout_workers, s.notify_token, s.api_token) == \
        ("http://lainlet.lain:9001", 9002, "/api/v1", 3.0, 32, "", "")


def test_values_are_normalised():
    s = Settings.from_env({"LAINLET_URL": "http://l:1/", "BACKUPD_API_PREFIX": "api/v2/",
                           "ADVERTISE_URL": "https://ctl/", "NODE_TIMEOUT_SECONDS": "0.5"})
    assert (s.lainlet_url, s.backupd_api_prefix, s.advertise_url, s.node_timeout_seconds) == \
        ("http://l:1", "/api/v2", "https://ctl", 0.5)
    assert Settings.from_env({"BACKUPD_API_PREFIX": "/"}).backupd_api_prefix == ""


@pytest.mark.parametrize("env, words", [
    ({"NODE_TIMEOUT_SECONDS": "abc"}, "NODE_TIMEOUT_SECONDS='abc' is not a number"),
    ({"FANOUT_WORKERS": "0"}, "FANOUT_WORKERS='0' must be at least 1"),
    ({"BACKUPD_PORT": "90.2"}, "BACKUPD_PORT='90.2' is not a whole number"),
    ({"PUSH_TIMEOUT_SECONDS": "nan"}, "PUSH_TIMEOUT_SECONDS='nan' must be at least 1"),
    ({"DYNAMODB_TIMEOUT_SECONDS": "inf"}, "DYNAMODB_TIMEOUT_SECONDS='inf' must be at least 0.1"),
])
def test_bad_values_name_the_variable(env, words):
    with pytest.raises(SettingsError, match=words.replace("(", r"\(")) as e:
        Settings.from_env(env)
    assert e.value.status == 500 and e.value.code == "bad_setting"


def test_the_spread_is_off_unless_asked():
    assert Settings.from_env({}).spread_seconds is False
    assert Settings.from_env({"SPREAD_SECONDS": "true"}).spread_seconds is True
    with pytest.raises(SettingsError, match="SPREAD_SECONDS='sometimes' is not true or false"):
        Settings.from_env({"SPREAD_SECONDS": "sometimes"})


def test_the_daemons_post_to_the_function_url_when_one_is_set():
    from chalicelib.usecases.reconcile import notify_url

    rest = Settings.from_env({"ADVERTISE_URL": "https://ctl/"})
    assert rest.notify_address == "https://ctl/api/v2/system/notify"
    assert notify_url(rest, "t0k") == "https://ctl/api/v2/system/notify?token=t0k"
    url = Settings.from_env({"ADVERTISE_URL": "https://ctl",
                             "NOTIFY_URL": "https://abc.lambda-url.us-east-1.on.aws/"})
    assert url.notify_address == "https://abc.lambda-url.us-east-1.on.aws/"  # kept as given
    assert notify_url(url, "t0k") == "https://abc.lambda-url.us-east-1.on.aws/?token=t0k"
    assert notify_url(url, "") == "https://abc.lambda-url.us-east-1.on.aws/"
    assert notify_url(Settings.from_env({"NOTIFY_URL": "https://n/?a=1"}), "t") == "https://n/?a=1&token=t"
    assert notify_url(Settings.from_env({}), "t") == ""
