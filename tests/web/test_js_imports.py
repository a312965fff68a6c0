"""Finding what a JavaScript module imports (qrgate.web.js_imports): every form the app and
the vendored libraries use, and none of the look-alikes in comments, strings, templates and
regular expressions."""

from __future__ import annotations

import pytest

from qrgate.web.js_imports import imported_specifiers
from qrgate.web.pages import VENDOR_DIR


@pytest.mark.parametrize(("source", "expected"), [
    ('import a from "./a.js";', ["./a.js"]),
    ("import {b as c, d} from './b.js'", ["./b.js"]),
    ('import {\n  e,\n  f,\n} from "./multi-line.js";', ["./multi-line.js"]),
    ('import * as ns from "../ns.js"', ["../ns.js"]),
    ('import def, * as ns from "./both.js"', ["./both.js"]),
    ('import "./side-effect.js";', ["./side-effect.js"]),
    ('export * from "./all.js";', ["./all.js"]),
    ('export * as n from "./all-as.js";', ["./all-as.js"]),
    ("export { g, h as i } from './some.js'", ["./some.js"]),
    ('const m = await import("./lazy.js");', ["./lazy.js"]),
    ('new Worker(new URL("./worker.js", import.meta.url), {type: "module"})',
     ["./worker.js"]),
    ('const u = new URL("../x.wasm", import.meta.url).href;', ["../x.wasm"]),
    # Minified, as zxing-wasm ships it.
    ('import{A as e,B as t}from"../share.js";', ["../share.js"]),
    ('import a from "./a.js"; import b from "./a.js";', ["./a.js"]),
])
def test_forms(source: str, expected: list[str]) -> None:
    assert imported_specifiers(source) == expected


@pytest.mark.parametrize("source", [
    '// import a from "./comment.js"',
    "/* import('./block.js') */",
    "/** @typedef {import('./interface').DecodeOptions} DecodeOptions */",
    "/** @returns {import(\"../../../vendor/cborg/cborg.js\").Token} */",
    "const s = \"import z from './in-string.js'\";",
    "const s = 'export * from \"./in-string.js\"';",
    'const t = `import("./in-template.js") ${x}`;',
    "const r = /import \"\\.\\/in-regex.js\"/g;",
    'object.import("./method.js");',
    'reimport("./other-function.js");',
    'const u = new URL("./not-module-relative.js", location.href);',
])
def test_look_alikes(source: str) -> None:
    assert imported_specifiers(source) == []


def test_division_is_not_a_regex() -> None:
    source = 'const half = total / 2 / count; import("./after.js");'
    assert imported_specifiers(source) == ["./after.js"]


def test_regex_with_quote_and_slash_in_class() -> None:
    source = "const r = /[\"/]+/; import x from './after.js';"
    assert imported_specifiers(source) == ["./after.js"]


def test_the_vendored_modules() -> None:
    cborg = (VENDOR_DIR / "cborg/cborg.js").read_text(encoding="utf-8")
    assert imported_specifiers(cborg) == ["./lib/encode.js", "./lib/decode.js",
                                          "./lib/token.js"]
    reader = (VENDOR_DIR / "zxing-wasm/dist/es/reader/index.js").read_text(encoding="utf-8")
    assert imported_specifiers(reader) == ["../share.js"]
    share = (VENDOR_DIR / "zxing-wasm/dist/es/share.js").read_text(encoding="utf-8")
    # Its regular expression /_(.+?)\.wasm$/ and its jsDelivr template are not imports.
    assert imported_specifiers(share) == []
