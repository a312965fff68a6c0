"""The module specifiers a JavaScript file imports: static ``import``/``export ... from``,
dynamic ``import("...")`` with a literal, and ``new URL("...", import.meta.url)``.

The service worker's list of files (qrgate.web.app_shell) follows these from the app's own
modules into the vendored libraries, so a module that is imported is never missing offline.
This is not a JavaScript parser: it blanks comments (JSDoc says ``import('./x')`` in types
that are never loaded) and the insides of strings, template literals and regular expression
literals (``"import x from 'y'"`` in a string is text, not an import), then matches the
four forms on what is left, reading each specifier back from the original text. A
specifier built at run time cannot be found this way; the app does not use any.
"""

from __future__ import annotations

import re
from typing import Final

# After one of these, a "/" starts a regular expression literal; after anything else
# (a name, a number, ")" or "]") it divides.
_REGEX_BEFORE: Final = frozenset("(,=:[!&|?{};~+-*%<>^")
_REGEX_AFTER_WORDS: Final = frozenset({
    "return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw",
    "case", "do", "else", "yield", "await",
})
_QUOTED: Final = r"""(["'])([^"'\n]+)\1"""
_FORMS: Final = (
    # import x from "m"; import {a, b as c} from "m"; import * as n from "m"; import "m"
    re.compile(r"(?<![\w$.])import\s*(?:[\w$*{}\s,]+?\s*from\s*)?" + _QUOTED),
    # export * from "m"; export * as n from "m"; export {a, b} from "m"
    re.compile(r"(?<![\w$.])export\s*(?:\*(?:\s*as\s+[\w$]+)?|\{[^}]*\})\s*from\s*" + _QUOTED),
    # import("m")
    re.compile(r"(?<![\w$.])import\s*\(\s*" + _QUOTED + r"\s*[,)]"),
    # new URL("m", import.meta.url): a worker's script or a WebAssembly file next to a module
    re.compile(r"(?<![\w$.])new\s+URL\s*\(\s*" + _QUOTED + r"\s*,\s*import\.meta\.url"),
)


def imported_specifiers(source: str) -> list[str]:
    """Every specifier ``source`` imports, in order of appearance, each once."""
    code = _blank_comments_and_literals(source)
    found: list[tuple[int, str]] = []
    for form in _FORMS:
        for match in form.finditer(code):
            start, end = match.span(2)
            found.append((start, source[start:end]))
    return list(dict.fromkeys(specifier for _, specifier in sorted(found)))


def _blank_comments_and_literals(source: str) -> str:
    """``source`` with comments and the contents of template and regular expression
    literals replaced by spaces, and the contents of strings by ``x`` (same length, so
    offsets still point into ``source``)."""
    out = list(source)
    length = len(source)
    last_significant = ""
    last_word = ""
    i = 0

    def blank(start: int, end: int) -> None:
        for j in range(start, min(end, length)):
            if out[j] != "\n":
                out[j] = " "

    while i < length:
        char = source[i]
        pair = source[i:i + 2]
        if pair == "//":
            end = source.find("\n", i)
            end = length if end < 0 else end
            blank(i, end)
            i = end
            continue
        if pair == "/*":
            end = source.find("*/", i + 2)
            end = length if end < 0 else end + 2
            blank(i, end)
            i = end
            continue
        if char in "\"'`":
            end = _string_end(source, i)
            if char == "`":
                blank(i + 1, end - 1)
            else:
                # Filled rather than blanked, so the forms still see a non-empty string
                # where a specifier may be; its text is read back from ``source``.
                for j in range(i + 1, end - 1):
                    out[j] = "x"
            i = end
            last_significant, last_word = char, ""
            continue
        if char == "/" and (last_significant in _REGEX_BEFORE or last_significant == ""
                            or last_word in _REGEX_AFTER_WORDS):
            end = _regex_end(source, i)
            blank(i + 1, end - 1)
            i = end
            last_significant, last_word = "/", ""
            continue
        if char.isalnum() or char in "_$":
            start = i
            while i < length and (source[i].isalnum() or source[i] in "_$"):
                i += 1
            last_word = source[start:i]
            last_significant = source[i - 1]
            continue
        if not char.isspace():
            last_significant, last_word = char, ""
        i += 1
    return "".join(out)


def _string_end(source: str, start: int) -> int:
    """The index just past the string or template literal that starts at ``start``."""
    quote = source[start]
    i = start + 1
    while i < len(source):
        char = source[i]
        if char == "\\":
            i += 2
            continue
        if char == quote:
            return i + 1
        if char == "\n" and quote != "`":
            return i  # an unterminated string ends at the line (a syntax error anyway)
        i += 1
    return len(source)


def _regex_end(source: str, start: int) -> int:
    """The index just past the regular expression literal (and its flags) at ``start``."""
    i = start + 1
    in_class = False
    while i < len(source):
        char = source[i]
        if char == "\\":
            i += 2
            continue
        if char == "\n":
            return i
        if char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "/" and not in_class:
            i += 1
            while i < len(source) and (source[i].isalnum() or source[i] in "_$"):
                i += 1
            return i
        i += 1
    return len(source)
