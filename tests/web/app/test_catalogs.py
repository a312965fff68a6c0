"""The phone app's message catalogs (en, zh-CN): the same keys in both, every key the app
uses present, none unused, and a person's message for every refusal code the app can meet
(the server's, the app's own and its codec's)."""

from __future__ import annotations

import re

from qrgate.core.confirm import ConfirmState
from qrgate.errors import ERROR_CODES
from support.phone_app import CATALOGS, catalog

APP = CATALOGS.parent
LANGUAGES = ("en", "zh-CN")
KEY = re.compile(r'"([a-z_]+\.[a-z_]+)"')
APP_CODE = re.compile(r'new CodeError\(\s*"([a-z_]+)"')
CODEC_CODES = re.compile(r'"([a-z_]+)"')
# Keys built at run time: the family, and every value that can complete it.
DEVICE_STATUSES = ("active", "frozen", "unbound")
# Operations named in the catalogs (others show as the relying party wrote them); the
# waiting page names the same ones.
OPERATIONS = ("transfer", "login", "password_change", "device_add")
# Problems the app names itself when the wire fails (qrgate/web/app/js/shared/api.js).
WIRE_CODES = ("network", "http_404", "http_500", "http_502", "http_503")


def scripts() -> str:
    return "\n".join(path.read_text("utf-8") for path in sorted((APP / "js").rglob("*.js")))


def app_codes() -> set[str]:
    codes = set(APP_CODE.findall(scripts()))
    # The codec's CodeError codes are listed in its typedef (shared/errors.js).
    typedef = (APP / "js" / "shared" / "errors.js").read_text("utf-8").split("*/")[0]
    codes |= set(CODEC_CODES.findall(typedef))
    # Codes passed through a variable: the two branches of `no token / another user`.
    codes |= {"wrong_user", "no_token"}
    return codes


def used_keys() -> set[str]:
    page = (APP / "index.html").read_text("utf-8")
    keys = set(KEY.findall(scripts())) | set(re.findall(r'data-i18n(?:-label)?="([^"]+)"', page))
    keys |= {f"result.{state}" for state in ConfirmState}
    keys |= {f"result.{state}_detail" for state in ConfirmState}
    keys |= {f"device.{status}" for status in DEVICE_STATUSES}
    keys |= {f"operation.{operation}" for operation in OPERATIONS}
    keys |= {f"error.{code}" for code in (*ERROR_CODES, *app_codes(), *WIRE_CODES)}
    return keys


def test_both_catalogs_hold_the_same_keys_and_placeholders() -> None:
    english, chinese = (catalog(language) for language in LANGUAGES)
    assert english.keys() == chinese.keys()
    for key, message in english.items():
        assert set(re.findall(r"\{(\w+)\}", message)) == set(
            re.findall(r"\{(\w+)\}", chinese[key])), key
        assert chinese[key] != "" and message != "", key


def test_every_key_the_app_uses_is_there_and_every_key_is_used() -> None:
    english = catalog("en")
    used = used_keys()
    assert sorted(used - english.keys()) == []
    assert sorted(english.keys() - used) == []


def test_the_chinese_catalog_is_chinese() -> None:
    chinese = catalog("zh-CN")
    untranslated = [key for key, message in chinese.items()
                    if key != "app.name" and not re.search(r"[\u4e00-\u9fff]", message)]
    assert untranslated == []

