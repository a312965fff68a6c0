"""The waiting page of scheme C in English and Simplified Chinese, and its "No qrgate app
yet?" disclosure, in a real Chromium against a real server.

The catalogs (``static/i18n/confirm.<lang>.json``) are checked against what uses them: the
keys the page's modules (``static/confirm/``) and its template name, the reasons the server
writes into a challenge (read from its source, as tests/test_refusal_codes.py reads error
codes) and the states a challenge can be in. Screenshots at a phone's size (390x844) go to
tests/web/screenshots/ to be looked at.
"""

from __future__ import annotations

import ast
import base64
import json
import re
from collections.abc import Iterator
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

import qrgate
from qrgate.core.confirm import ConfirmState
from qrgate.errors import ERROR_CODES
from qrgate.qrimage import decode_image
from qrgate.web.js_imports import imported_specifiers
from qrgate.web.pages import _CONFIRM_PAGE, STATIC_DIR
from support.stack import Stack
from support.waiting_page import open_page, realtime, scanned_qr, start_transfer

WAIT_MS = 5_000
LANGUAGES = ("en", "zh-CN")
SOURCE = Path(qrgate.__file__).parent
SCRIPT_DIR = STATIC_DIR / "confirm"  # the page's modules; it loads main.js
SCREENSHOTS = Path(__file__).parent / "screenshots"
# Problems the page shows rather than retries (api.js isTransient: below 500, not 429),
# from the calls it makes: browser-session, the status, rotate (whose refusals send it to
# the status instead). Each is met in the browser below.
PAGE_PROBLEMS = ("challenge_not_found", "wrong_browser", "missing_credentials")


@cache
def catalog(language: str) -> dict[str, str]:
    loaded: dict[str, str] = json.loads(
        (STATIC_DIR / "i18n" / f"confirm.{language}.json").read_text(encoding="utf-8"))
    return loaded


def text(language: str, key: str, **values: str) -> str:
    return catalog(language)[key].format(**values)


# --- the browser side ---------------------------------------------------------------------


@pytest.fixture
def phone_context(browser: Browser, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    """A phone-sized browser profile; ``locale`` (indirect parameter, default en-US) sets
    navigator.languages and Accept-Language as a browser in that language would."""
    locale = getattr(request, "param", "en-US")
    context = browser.new_context(viewport={"width": 390, "height": 844},
                                  device_scale_factor=2, locale=locale)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def phone_page(phone_context: BrowserContext) -> Page:
    return phone_context.new_page()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def policy_violations(page: Page) -> list[str]:
    found: list[str] = []
    page.on("console", lambda message: found.append(message.text)
            if "Content Security Policy" in message.text else None)
    return found


@pytest.mark.parametrize(("phone_context", "language"),
                         [("en-US", "en"), ("zh-CN", "zh-CN")], indirect=["phone_context"])
def test_the_page_speaks_the_browsers_language_from_waiting_to_approved(
        stack: Stack, phone_page: Page, language: str) -> None:
    page = phone_page
    phone = realtime(stack)
    violations = policy_violations(page)
    started = start_transfer(stack, number_matching=True)
    open_page(page, started)

    status = page.locator("#qg-status")
    expect(status).to_have_text(text(language, "state.pending"), timeout=WAIT_MS)
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page).to_have_title(text(language, "page.title"))
    expect(page.locator("#qg-title")).to_have_text(text(language, "page.heading"))
    expect(page.locator("#qg-operation")).to_have_text(text(language, "operation.transfer"))
    expect(page.locator("#qg-source")).to_have_text(
        text(language, "scene.requested_from", source="web/transfers"))
    expect(page.locator("#qg-number-title")).to_have_text(text(language, "number.heading"))
    expect(page.locator("#qg-countdown")).to_have_text(
        re.compile(re.escape(text(language, "countdown.expires_in", time="4:")) + r"\d\d"))
    assert page.locator("#qg-qr-img").get_attribute("alt") == text(language, "qr.alt")
    expect(page.locator("#qg-lang")).to_have_value(language)
    screenshot(page, f"confirm-{language}-pending")

    page.locator("#qg-get-app summary").click()
    expect(page.locator("#qg-app-qr")).to_be_visible()
    screenshot(page, f"confirm-{language}-no-app-yet")
    page.locator("#qg-get-app summary").click()

    phone.scan_text(scanned_qr(page))
    expect(status).to_have_text(text(language, "state.scanned"), timeout=WAIT_MS)
    expect(page.locator("#qg-get-app")).to_be_hidden()
    phone.decide(started["challenge_id"], approve=True, number=started["number"])
    expect(status).to_have_text(text(language, "state.approved"), timeout=WAIT_MS)
    expect(page.locator("#qg-reason")).to_have_text(text(language, "reason.approved"))
    screenshot(page, f"confirm-{language}-approved")
    assert violations == []


@pytest.mark.parametrize("phone_context", ["zh-CN"], indirect=True)
def test_a_chinese_browser_reads_the_denial_in_chinese(stack: Stack, phone_page: Page) -> None:
    page = phone_page
    phone = realtime(stack)
    started = start_transfer(stack)
    open_page(page, started)
    status = page.locator("#qg-status")
    expect(status).to_have_text("请用手机上的 qrgate 应用扫描", timeout=WAIT_MS)

    phone.scan_text(scanned_qr(page))
    expect(status).to_have_text("已扫描，请在手机上确认", timeout=WAIT_MS)
    phone.decide(started["challenge_id"], approve=False)
    expect(status).to_have_text("已拒绝", timeout=WAIT_MS)
    expect(page.locator("#qg-reason")).to_have_text("您已在手机上拒绝，未执行任何操作。")


def test_the_switch_changes_the_language_and_is_remembered(stack: Stack,
                                                          phone_page: Page) -> None:
    page = phone_page
    realtime(stack)
    started = start_transfer(stack)
    open_page(page, started)
    status = page.locator("#qg-status")
    expect(status).to_have_text(text("en", "state.pending"), timeout=WAIT_MS)

    page.locator("#qg-lang").select_option("zh-CN")
    expect(status).to_have_text(text("zh-CN", "state.pending"))
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#qg-title")).to_have_text(text("zh-CN", "page.heading"))
    expect(page.locator("#qg-countdown")).to_contain_text(
        text("zh-CN", "countdown.expires_in", time=""))

    # The fragment is gone; the cookie set on the first load is what binds the page now.
    page.reload()
    expect(status).to_have_text(text("zh-CN", "state.pending"), timeout=WAIT_MS)
    expect(page.locator("#qg-lang")).to_have_value("zh-CN")

    page.locator("#qg-lang").select_option("en")
    expect(status).to_have_text(text("en", "state.pending"))
    expect(page.locator("html")).to_have_attribute("lang", "en")


@pytest.mark.parametrize("phone_context", ["zh-CN"], indirect=True)
def test_without_catalogs_the_page_still_shows_the_code_and_the_result(
        stack: Stack, phone_page: Page) -> None:
    page = phone_page
    phone = realtime(stack)
    started = start_transfer(stack)
    # The Chinese catalog first, to see English stand in for it; then none at all.
    page.route("**/i18n/confirm.zh-CN.json", lambda route: route.abort())
    open_page(page, started)
    status = page.locator("#qg-status")
    expect(status).to_have_text(text("en", "state.pending"), timeout=WAIT_MS)
    expect(page.locator("html")).to_have_attribute("lang", "en")

    page.route("**/i18n/*.json", lambda route: route.abort())
    page.reload()
    # The template's English, and the codes as words where the script would speak.
    expect(status).to_have_text("pending", timeout=WAIT_MS)
    expect(page.locator("#qg-title")).to_have_text(text("en", "page.heading"))
    phone.scan_text(scanned_qr(page))
    phone.decide(started["challenge_id"], approve=False)
    expect(status).to_have_text("denied", timeout=WAIT_MS)
    expect(page.locator("#qg-reason")).to_have_text("denied by user")


@pytest.mark.parametrize("phone_context", ["zh-CN"], indirect=True)
def test_problems_the_page_meets_are_explained_in_chinese(stack: Stack,
                                                          phone_page: Page) -> None:
    page = phone_page
    realtime(stack)
    started = start_transfer(stack)
    page_url = started["links"]["page"]
    error = page.locator("#qg-error")
    opened = {
        "missing_credentials": page_url,
        "wrong_browser": f"{page_url}#bt=not-the-token",
        "challenge_not_found": f"{stack.base_url}/confirm/{'0' * 32}#bt=some-token",
    }
    assert set(opened) == set(PAGE_PROBLEMS)
    for code, url in opened.items():
        page.goto("about:blank")  # a change of fragment alone does not reload a page
        page.goto(url)
        expect(error).to_have_text(text("zh-CN", f"error.{code}"), timeout=WAIT_MS)
        expect(page.locator("#qg-status")).to_have_text(text("zh-CN", "status.error"))
        expect(page.locator("#qg-get-app")).to_be_hidden()


def test_the_app_qr_shows_only_in_its_disclosure_and_scans_to_the_app(
        stack: Stack, phone_page: Page) -> None:
    page = phone_page
    realtime(stack)
    open_page(page, start_transfer(stack))
    app_url = f"{stack.rt.settings.public_url}/app/"
    scanned_qr(page)
    expect(page.locator("#qg-get-app")).to_be_visible()
    expect(page.locator("#qg-app-qr")).to_be_hidden()
    # Closed, the page holds one code to scan: the confirmation's.
    assert len(decode_image(page.screenshot(full_page=True))) == 1

    page.locator("#qg-get-app summary").click()
    link = page.locator("#qg-app-link")
    expect(link).to_have_text(app_url)
    assert link.get_attribute("href") == "../app/"
    assert link.evaluate("a => a.href") == app_url
    page.wait_for_function(
        "() => { const img = document.getElementById('qg-app-qr');"
        " return img.complete && img.naturalWidth > 0; }", timeout=WAIT_MS)
    assert [qr.text for qr in decode_image(page.locator("#qg-app-qr").screenshot())] == [
        app_url]


def test_the_app_qr_route_serves_the_configured_address_whatever_the_host(
        stack: Stack, phone_page: Page) -> None:
    # A Host header of another site must not put that site into the code.
    served = httpx.get(f"{stack.base_url}/app-qr.svg", headers={"Host": "evil.example"})
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("image/svg+xml")
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-security-policy"] == "default-src 'none'"
    data = base64.b64encode(served.content).decode()
    phone_page.set_content(f'<img id="qr" style="width:240px; display:block"'
                           f' src="data:image/svg+xml;base64,{data}">')
    phone_page.wait_for_function("() => document.images[0].complete")
    assert [qr.text for qr in decode_image(phone_page.locator("#qr").screenshot())] == [
        f"{stack.rt.settings.public_url}/app/"]


# --- the catalogs against what uses them ------------------------------------------------


def test_the_catalogs_hold_the_same_keys_and_placeholders() -> None:
    english, chinese = catalog("en"), catalog("zh-CN")
    assert set(english) == set(chinese), set(english) ^ set(chinese)
    for key, message in english.items():
        assert message.strip() and chinese[key].strip(), key
        assert placeholders(message) == placeholders(chinese[key]), key
    # A family's fallback must show the code it stands for.
    for key in (key for key in english if key.endswith(".other")):
        assert placeholders(english[key]) == {"code"}, key


def placeholders(message: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", message))


def test_every_key_the_page_uses_is_in_the_catalogs_and_every_key_is_used() -> None:
    used = script_keys() | set(template_texts())
    families = script_families()
    assert {"reason", "state", "error", "operation"} <= families
    for language in LANGUAGES:
        missing = used - set(catalog(language))
        assert not missing, f"confirm.{language}.json lacks {sorted(missing)}"
    unused = {key for key in catalog("en") if key not in used
              and key.split(".", 1)[0] not in families}
    assert not unused, f"in the catalogs, used by nothing: {sorted(unused)}"


def test_the_templates_own_texts_are_the_catalogs() -> None:
    """What shows before a catalog loads (or when none does) is what the catalog says."""
    for key, shown in template_texts().items():
        for language, words in shown:
            assert words == " ".join(catalog(language)[key].split()), (key, language)


def test_every_reason_the_server_writes_into_a_challenge_has_a_message() -> None:
    reasons = challenge_reasons()
    # The collector still finds each kind of source it reads.
    assert {"approved", "denied_by_user", "expired", "scanned_twice", "user_frozen"} <= reasons
    for language in LANGUAGES:
        missing = {r for r in reasons if f"reason.{r}" not in catalog(language)}
        assert not missing, f"confirm.{language}.json has no message for {sorted(missing)}"


def test_every_state_and_every_problem_the_page_shows_has_a_message() -> None:
    assert set(PAGE_PROBLEMS) <= set(ERROR_CODES)
    keys = [f"state.{state.value}" for state in ConfirmState] + [
        f"error.{code}" for code in PAGE_PROBLEMS]
    for language in LANGUAGES:
        assert not set(keys) - set(catalog(language)), language


def script_modules() -> list[Path]:
    """The page's modules: main.js and all it imports, which must be every module in the
    folder (a module nothing loads would lend the check keys the page never uses)."""
    found: list[Path] = []
    waiting = [SCRIPT_DIR / "main.js"]
    while waiting:
        module = waiting.pop()
        if module in found:
            continue
        found.append(module)
        for specifier in imported_specifiers(module.read_text(encoding="utf-8")):
            assert specifier.startswith("./"), (module.name, specifier)
            waiting.append((module.parent / specifier).resolve())
    assert set(found) == {path.resolve() for path in SCRIPT_DIR.rglob("*.js")}
    return sorted(found)


def script_source() -> str:
    """The page's modules without their comments, which quote keys as examples."""
    source = "\n".join(path.read_text(encoding="utf-8") for path in script_modules())
    return re.sub(r"^\s*//.*$|\s//\s.*$", "", source, flags=re.MULTILINE)


def script_keys() -> set[str]:
    """Keys the page's modules name outright: every string literal shaped ``family.name``."""
    keys = set(re.findall(r'"([a-z]+\.[a-z_]+)"', script_source()))
    assert "state.other" in keys and "countdown.expires_in" in keys
    return keys


def script_families() -> set[str]:
    """Families whose keys the page's modules build from a code (`reason.${...}`)."""
    return set(re.findall(r"`([a-z]+)\.\$\{", script_source()))


class _TemplateTexts(HTMLParser):
    """Each key the template names (data-i18n, data-i18n-alt, data-i18n-aria-label), with
    the language (its element's ``lang``, else English) and words it holds for it."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: dict[str, list[tuple[str, str]]] = {}
        self._open: list[tuple[str, str, str, list[str]]] = []  # tag, key, language, words

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        language = found.get("lang", "en")
        if "data-i18n-alt" in found:
            self._add(found["data-i18n-alt"], language, found.get("alt", ""))
        if "data-i18n-aria-label" in found:
            self._add(found["data-i18n-aria-label"], language, found.get("aria-label", ""))
        if "data-i18n" in found:
            self._open.append((tag, found["data-i18n"], language, []))

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][3].append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            _, key, language, words = self._open.pop()
            self._add(key, language, "".join(words))

    def _add(self, key: str, language: str, words: str) -> None:
        self.texts.setdefault(key, []).append((language, " ".join(words.split())))


def template_texts() -> dict[str, list[tuple[str, str]]]:
    parser = _TemplateTexts()
    parser.feed(_CONFIRM_PAGE.format(challenge_id="0" * 32, code_ttl=30))
    assert "page.title" in parser.texts and "qr.alt" in parser.texts
    return parser.texts


# --- the reasons a challenge can carry, from the source -----------------------------------


def challenge_reasons() -> set[str]:
    """Every reason qrgate can write into a challenge, read from its source:

    * a literal ``reason=`` in qrgate.confirm.repository's statements (``expired``);
    * the ``reason`` of each call, anywhere in qrgate, of a repository function that takes
      one (``kill``, ``decide`` ...), resolved to the strings it can hold: a literal, a
      name assigned from literals (``FROZEN_REASON``, ``state, reason = ...``), or
      ``error.code`` inside ``if error.code in (...)``.

    A reason of any other form fails the test: this reader must then learn it."""
    repository = ast.parse((SOURCE / "confirm" / "repository.py").read_text())
    writers = {node.name for node in repository.body if isinstance(node, ast.FunctionDef)
               and "reason" in [a.arg for a in node.args.args + node.args.kwonlyargs]}
    reasons = {found for node in ast.walk(repository) if isinstance(node, ast.Call)
               for keyword in node.keywords if keyword.arg == "reason"
               and isinstance(keyword.value, ast.Constant) for found in strings(keyword.value)}
    for path in sorted(SOURCE.rglob("*.py")):
        module = ast.parse(path.read_text())
        aliases = repository_aliases(module)
        for node, ancestors in walk(module):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in aliases and node.func.attr in writers):
                (value,) = [k.value for k in node.keywords if k.arg == "reason"]
                reasons |= resolved(value, (module, *ancestors), where=f"{path}:{node.lineno}")
    return reasons


def repository_aliases(module: ast.Module) -> set[str]:
    return {alias.asname or alias.name for node in ast.walk(module)
            if isinstance(node, ast.ImportFrom) and node.module == "qrgate.confirm"
            for alias in node.names if alias.name == "repository"}


def walk(node: ast.AST, ancestors: tuple[ast.AST, ...] = ()
         ) -> Iterator[tuple[ast.AST, tuple[ast.AST, ...]]]:
    yield node, ancestors
    for child in ast.iter_child_nodes(node):
        yield from walk(child, (*ancestors, node))


def resolved(value: ast.expr, ancestors: tuple[ast.AST, ...], *, where: str) -> set[str]:
    if isinstance(value, ast.Constant):
        return strings(value)
    if isinstance(value, ast.Name):
        scopes = [a for a in ancestors
                  if isinstance(a, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef)]
        for scope in reversed(scopes):  # the innermost that assigns the name
            assigned = [node.value for node in ast.walk(scope) if isinstance(node, ast.Assign)
                        and value.id in {n.id for target in node.targets
                                         for n in ast.walk(target) if isinstance(n, ast.Name)}]
            if assigned:
                return {found for a in assigned for found in strings(a)}
    if isinstance(value, ast.Attribute) and value.attr == "code":
        for test in (a.test for a in ancestors if isinstance(a, ast.If)):
            if (isinstance(test, ast.Compare) and isinstance(test.ops[0], ast.In)
                    and ast.unparse(test.left) == ast.unparse(value)
                    and isinstance(test.comparators[0], ast.Tuple)):
                return strings(test.comparators[0])
    raise AssertionError(f"{where}: cannot tell which reasons {ast.unparse(value)} holds")


def strings(node: ast.AST) -> set[str]:
    """The string literals in ``node``."""
    return {n.value for n in ast.walk(node)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)}
